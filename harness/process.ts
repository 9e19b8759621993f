import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { atProcessEnd } from './cleanup.js';

/** The emitter as a real child process (`batch-emitter run` through tsx), for crash and signal tests. */

const REPO = fileURLToPath(new URL('..', import.meta.url));
const live = new Set<ChildProcess>();
atProcessEnd(() => {
  for (const child of live) child.kill('SIGKILL');
});

export interface EmitterProcess {
  readonly child: ChildProcess;
  output(): string;
  /** resolves with the exit code (or the signal name) */
  exited: Promise<number | string>;
  /** resolves once the log says the emitter is running */
  ready: Promise<void>;
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM once it is running (a signal during start-up would find no handler yet); resolves with the exit */
  stop(): Promise<number | string>;
}

export function spawnEmitter(env: Record<string, string>, args: string[] = ['run']): EmitterProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/bin.ts', ...args], {
    cwd: REPO,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      ...env,
      TRANSMITTER_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const { output, ready, exited } = watchEmitter(child);
  void exited.then(() => live.delete(child));
  const stop = async () => {
    await Promise.race([ready, exited]);
    child.kill('SIGTERM');
    return exited;
  };
  return { child, output, exited, ready, kill: (signal) => child.kill(signal), stop };
}

/** An emitter child's output (stdout and stderr together), its `running` log line and its exit. */
export function watchEmitter(child: ChildProcess): Pick<EmitterProcess, 'output' | 'ready' | 'exited'> {
  let out = '';
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const onData = (chunk: Buffer) => {
    out += chunk.toString();
    if (out.includes('"msg":"running"')) markReady();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  return { output: () => out, ready, exited };
}
