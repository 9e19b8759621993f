/**
 * What every part of the bench shares: where things are, the progress line, number formatting,
 * and the children and temp dirs it starts (killed and removed however the run ends).
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { atProcessEnd } from '../../harness/cleanup.js';
import { Progress } from '../progress.js';
import { loadAverage } from './proc.js';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const OUT_DIR = join(REPO, 'bench-results');
export const HERE = fileURLToPath(new URL('.', import.meta.url));
export const progress = new Progress({
  width: 24,
  labelWidth: 14,
  trailer: () => `load ${loadAverage()[0].toFixed(2)}`,
});
export const say = (line = '') => progress.log(line);
export const fmt = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : 'n/a';
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// cleanup: children are killed and temp dirs removed however the run ends (BENCH_KEEP_TEMP=1 keeps
// them, e.g. to read the emitters' logs after a run with BENCH_NODE_FLAGS=--trace-gc)

export const children = new Set<ChildProcess>();
const tempDirs: string[] = [];
atProcessEnd(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (process.env.BENCH_KEEP_TEMP === '1') return;
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

export function tempDir(parent: string, prefix: string): string {
  const dir = mkdtempSync(join(parent, prefix));
  tempDirs.push(dir);
  return dir;
}

/** `nats-server --version` ("nats-server: v2.9.10") as the server logs it ("2.9.10") */
export function natsServerVersion(): string {
  try {
    const out = execFileSync('nats-server', ['--version'], { encoding: 'utf8', timeout: 5000 });
    return /v?(\d+\.\d+\.\S+)/.exec(out)?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((r) => child.once('exit', (code) => r(code)));
}
