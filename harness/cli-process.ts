import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { atProcessEnd } from './cleanup.js';

/**
 * `batch-emitter <args>` as a child process (through tsx) with exactly the environment given
 * (unlike spawnEmitter, the log level is not overridden), stdout and stderr kept apart.
 */

const REPO = fileURLToPath(new URL('..', import.meta.url));
const live = new Set<ChildProcess>();
atProcessEnd(() => {
  for (const child of live) child.kill('SIGKILL');
});

export interface CliProcess {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** exit code, or the signal name */
  exited: Promise<number | string>;
  /** resolves with the first output line matching `pattern`; rejects if the process exits first */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  kill(signal: NodeJS.Signals): void;
}

export function spawnCli(env: Record<string, string>, args: string[]): CliProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/bin.ts', ...args], {
    cwd: REPO,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const l of listeners) l();
  };
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
    notify();
  });
  child.stderr?.on('data', (c: Buffer) => {
    err += c.toString();
    notify();
  });
  let done = false;
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => {
      live.delete(child);
      // let the last 'data' events land
      setImmediate(() => {
        done = true;
        notify();
        resolve(code ?? signal ?? -1);
      });
    }),
  );
  const waitForLine = (pattern: RegExp, timeoutMs = 15_000): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const line = `${out}\n${err}`.split('\n').find((l) => pattern.test(l));
        if (line !== undefined) return finish(() => resolve(line));
        if (done) finish(() => reject(new Error(`exited before a line matched ${pattern}:\n${out}${err}`)));
      };
      const timer = setTimeout(
        () => finish(() => reject(new Error(`no line matched ${pattern} in ${timeoutMs} ms:\n${out}${err}`))),
        timeoutMs,
      );
      const finish = (fn: () => void) => {
        clearTimeout(timer);
        listeners.delete(check);
        fn();
      };
      listeners.add(check);
      check();
    });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForLine,
    kill: (signal) => child.kill(signal),
  };
}

/** Run a command to completion: exit code and both streams. */
export async function runCli(
  env: Record<string, string>,
  args: string[],
): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const p = spawnCli(env, args);
  const code = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}
