import type { Command } from 'commander';

/** Every subcommand's `register`; add new commands here (one file each). */
export const commands: Array<(program: Command) => void> = [];
