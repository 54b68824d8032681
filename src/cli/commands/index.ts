import type { Command } from 'commander';
import { register as analyze } from './analyze.js';
import { register as controller } from './controller.js';
import { register as genCrds } from './gen-crds.js';
import { register as install } from './install.js';
import { register as iptables } from './iptables.js';
import { register as kubeInject } from './kube-inject.js';
import { register as proxy } from './proxy.js';
import { register as proxyConfig } from './proxy-config.js';
import { register as proxyStatus } from './proxy-status.js';
import { register as up } from './up.js';
import { register as wait } from './wait.js';

/** Every subcommand's `register`; add new commands here (one file each). */
export const commands: Array<(program: Command) => void> = [
  analyze,
  controller,
  genCrds,
  install,
  iptables,
  kubeInject,
  proxy,
  proxyConfig,
  proxyStatus,
  up,
  wait,
];
