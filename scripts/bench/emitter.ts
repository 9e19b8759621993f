/** The emitter under test as a child process: which build, its environment, ready / stop / kill. */
import { spawn } from 'node:child_process';
import { openSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../harness/nats.js';
import { MALLOC_TUNING } from '../../src/util/heap-tuning.js';
import { children, exited, REPO, sleep } from './context.js';
import { cpuSeconds } from './proc.js';
import { EMITTER_ARG, S } from './settings.js';

export interface EmitterRun {
  pid: number;
  port: number;
  logPath: string;
  waitReady(): Promise<{ atMs: number; cpuS: number }>;
  stop(): Promise<{ code: number | null; atMs: number }>;
  /** SIGKILL: no shutdown, no flush; resolves when the process is gone */
  kill(): Promise<void>;
}

const DIST_BIN = join(REPO, 'dist', 'src', 'bin.js');
let builtBin: string | undefined;

/** The private esbuild copy to run when there is no dist/ (see build.ts). */
export function useBuild(bin: string | undefined): void {
  builtBin = bin;
}

/**
 * dist/ when it is there; else a private esbuild copy of src/ (bench-results/build, one JS file per
 * TS file, so the CPU profile has real line numbers; tsx's output is one line per module); else tsx.
 */
export function emitterCommand(): { args: string[]; what: string } {
  if (EMITTER_ARG) return { args: [EMITTER_ARG, 'run'], what: `node ${EMITTER_ARG} run (--emitter)` };
  try {
    statSync(DIST_BIN);
    return { args: [DIST_BIN, 'run'], what: 'node dist/src/bin.js run' };
  } catch {
    if (builtBin)
      return { args: [builtBin, 'run'], what: 'node bench-results/build/src/bin.js run (esbuild of src/)' };
    return {
      args: ['--import', 'tsx', join(REPO, 'src', 'bin.ts'), 'run'],
      what: 'node --import tsx src/bin.ts run',
    };
  }
}

export interface EmitterOptions {
  label: string;
  nats: string;
  sinkUrl: string;
  stream: string;
  subjects: string;
  durable: string;
  spoolDir: string;
  logDir: string;
  env?: Record<string, string>;
  cpuProfDir?: string;
}

/** This process's environment without its TRANSMITTER_* variables, plus the bench's. */
function emitterEnv(opts: EmitterOptions, port: number): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TRANSMITTER_')) env[k] = v;
  Object.assign(env, {
    TRANSMITTER_SERVER_HOST: '127.0.0.1',
    TRANSMITTER_SERVER_PORT: String(port),
    TRANSMITTER_NATS_URL: opts.nats,
    TRANSMITTER_NATS_STREAM: opts.stream,
    TRANSMITTER_NATS_SUBJECTS: opts.subjects,
    TRANSMITTER_NATS_DURABLE: opts.durable,
    TRANSMITTER_DESTINATION_URL: opts.sinkUrl,
    TRANSMITTER_ALLOW_INSECURE_HTTP: 'true',
    TRANSMITTER_COMPRESSION: 'gzip',
    TRANSMITTER_BATCH_SIZE: String(S.batchSize),
    TRANSMITTER_BATCH_INTERVAL_S: String(S.intervalS),
    TRANSMITTER_CONCURRENCY: String(S.concurrency),
    TRANSMITTER_SPOOL_DIR: opts.spoolDir,
    TRANSMITTER_LOG_LEVEL: 'warn',
    TRANSMITTER_PROBE_ID: 'bench-probe',
    TRANSMITTER_RUN_ID: 'bench-run',
    TRANSMITTER_SHUTDOWN_TIMEOUT_S: '5',
    // as deploy/ starts it (unless this process's environment says otherwise)
    ...Object.fromEntries(Object.entries(MALLOC_TUNING).map(([k, v]) => [k, process.env[k] ?? v])),
    ...opts.env,
  });
  return env;
}

/**
 * BENCH_NODE_FLAGS: node and V8 flags for the emitter's process only (e.g. `--single-threaded-gc`,
 * which NODE_OPTIONS refuses), for an A/B of runtime settings.
 */
const NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);

export async function startEmitter(opts: EmitterOptions): Promise<EmitterRun> {
  const port = await freePort();
  const env = emitterEnv(opts, port);
  const logPath = join(opts.logDir, `emitter-${opts.label}.log`);
  const logFd = openSync(logPath, 'a');
  const prof = opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`] : [];
  const child = spawn(process.execPath, [...NODE_FLAGS, ...prof, ...emitterCommand().args], {
    cwd: REPO,
    env,
    stdio: ['ignore', logFd, logFd],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const pid = child.pid as number;
  const logTail = () => readFileSync(logPath, 'utf8').trim().split('\n').slice(-15).join('\n');
  return {
    pid,
    port,
    logPath,
    async waitReady() {
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        if (child.exitCode !== null) throw new Error(`emitter exited (${child.exitCode}):\n${logTail()}`);
        try {
          const res = await fetch(`http://127.0.0.1:${port}/ready`);
          await res.arrayBuffer();
          if (res.status === 200) return { atMs: Date.now(), cpuS: cpuSeconds(pid) ?? NaN };
        } catch {
          // not listening yet
        }
        await sleep(20);
      }
      throw new Error(`emitter not ready within 60 s:\n${logTail()}`);
    },
    async stop() {
      const gone = exited(child);
      child.kill('SIGTERM');
      const force = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const code = await gone;
      clearTimeout(force);
      return { code, atMs: Date.now() };
    },
    async kill() {
      const gone = exited(child);
      child.kill('SIGKILL');
      await gone;
    },
  };
}
