/** One host run (host.ts, built to JS) as a child process: spawn, wait for "halted", SIGKILL, exit, its figures. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { children, exited, tempDir } from '../context.js';
import type { Contender } from './contenders.js';

export interface HostFigures {
  /** epoch ms when the host began to log */
  startedAt: number;
  logged: { wallMs: number; mainCpuMs: number; procCpuMs: number };
  /** from the start of logging to the end of pino's exit handler (absent when killed) */
  total?: { wallMs: number; mainCpuMs: number; procCpuMs: number };
  peakRssMB: number;
}

export interface HostRun {
  child: ChildProcess;
  /** resolves when the host printed "halted" (BENCH_HALT_AT) */
  halted: Promise<void>;
  exited: Promise<number | null>;
  figures(): HostFigures;
  output(): string;
}

export interface HostSpec {
  contender: Contender;
  options: Record<string, unknown>;
  from: number;
  lines: number;
  rate?: number;
  haltAt?: number;
}

export function startHost(buildDir: string, spec: HostSpec): HostRun {
  const resultPath = join(tempDir('/tmp', 'batch-emitter-bench-host-'), 'result.json');
  const child = spawn(process.execPath, [join(buildDir, 'scripts', 'bench', 'pino', 'host.js')], {
    env: {
      ...process.env,
      BENCH_TARGET: spec.contender.target,
      BENCH_OPTIONS: JSON.stringify(spec.options),
      BENCH_FROM: String(spec.from),
      BENCH_LINES: String(spec.lines),
      BENCH_RATE: String(spec.rate ?? 0),
      ...(spec.haltAt !== undefined ? { BENCH_HALT_AT: String(spec.haltAt) } : {}),
      BENCH_RESULT: resultPath,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  let resolveHalted: () => void = () => undefined;
  const halted = new Promise<void>((r) => (resolveHalted = r));
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
    if (out.includes('halted\n')) resolveHalted();
  });
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  return {
    child,
    halted,
    exited: exited(child).finally(() => children.delete(child)),
    figures: () => JSON.parse(readFileSync(resultPath, 'utf8')) as HostFigures,
    output: () => out,
  };
}
