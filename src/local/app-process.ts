/**
 * One app instance as a child process: started with its env, output kept (last lines, shown
 * when it fails) or streamed with a prefix, readiness = its port accepts connections, stopped
 * with SIGTERM then SIGKILL. Node children also get a guard (--import) that exits when the
 * `up` process is gone, so even a SIGKILLed `up` leaves nothing behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';

const KEEP_LINES = 30;

/** Exits when the parent changes (the `up` process died and the child was re-parented). */
const GUARD = `const p=process.ppid;setInterval(()=>{if(process.ppid!==p)process.exit(0)},500).unref();`;
const GUARD_IMPORT = `--import=data:text/javascript,${encodeURIComponent(GUARD)}`;

export interface AppProcessOptions {
  name: string;
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  /** Stream output, each line prefixed with `[name]`; else keep the last lines. */
  echo?: (line: string) => void;
  onExit?: (code: number | null, signal: NodeJS.Signals | null) => void;
}

export class AppProcess {
  readonly child: ChildProcess;
  private readonly lines: string[] = [];
  private exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exitPromise: Promise<void>;
  private stopping = false;

  constructor(private readonly o: AppProcessOptions) {
    const [cmd, ...args] = o.argv;
    const isNode = cmd === process.execPath;
    this.child = spawn(cmd!, isNode ? [GUARD_IMPORT, ...args] : args, {
      cwd: o.cwd,
      env: o.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exitPromise = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exited = { code, signal };
        if (!this.stopping) o.onExit?.(code, signal);
        resolve();
      });
      this.child.once('error', (err) => {
        this.remember(`cannot start ${o.argv[0]}: ${err.message}`);
        this.exited ??= { code: null, signal: null };
        if (!this.stopping) o.onExit?.(null, null);
        resolve();
      });
    });
    this.child.stdout?.on('data', (b: Buffer) => this.output(b));
    this.child.stderr?.on('data', (b: Buffer) => this.output(b));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exited === undefined;
  }

  /** The last lines the app printed (for error messages). */
  lastOutput(): string[] {
    return [...this.lines];
  }

  describeExit(): string {
    const e = this.exited;
    if (!e) return 'running';
    return e.signal
      ? `killed by ${e.signal}`
      : e.code === null
        ? 'failed to start'
        : `exited with code ${e.code}`;
  }

  private output(b: Buffer): void {
    for (const line of b.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      this.remember(line);
      this.o.echo?.(`[${this.o.name}] ${line}`);
    }
  }

  private remember(line: string): void {
    this.lines.push(line);
    if (this.lines.length > KEEP_LINES) this.lines.shift();
  }

  /**
   * Resolves when `host:port` accepts a connection; rejects when the process exits first or
   * after `timeoutMs`. Polls every 100 ms.
   */
  async waitListening(host: string, port: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 0; Date.now() < deadline && attempt < timeoutMs / 50; attempt++) {
      if (!this.running) throw new Error(`${this.o.name} ${this.describeExit()}`);
      if (await accepts(host, port)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${this.o.name} did not listen on ${host}:${port} within ${timeoutMs} ms`);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(graceMs = 3000): Promise<void> {
    this.stopping = true;
    if (!this.running) return;
    this.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        if (this.running) this.child.kill('SIGKILL');
        resolve();
      }, graceMs);
    });
    await Promise.race([this.exitPromise, killed]);
    clearTimeout(timer);
    await this.exitPromise;
  }

  /** Immediate SIGKILL (second Ctrl-C). */
  kill(): void {
    this.stopping = true;
    if (this.running) this.child.kill('SIGKILL');
  }
}

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
