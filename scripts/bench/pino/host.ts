/**
 * The host process of the pino comparison (a child of the bench, one per run): a pino 10 logger
 * with one transport (BENCH_TARGET, options in BENCH_OPTIONS as JSON) logs lines numbered
 * BENCH_FROM .. BENCH_FROM+BENCH_LINES-1 (~200 bytes each), 1,000 at a time, yielding to the event
 * loop in between (so pino's thread-stream can hand them to the transport's worker), as fast as it
 * can or at BENCH_RATE lines/s. Then it exits normally: pino's exit handler flushes and waits for
 * the worker's close. With BENCH_HALT_AT it stops after that many lines, prints "halted" and waits
 * to be killed.
 *
 * It writes its figures to BENCH_RESULT at exit: wall and CPU time while logging and in all, of
 * the main thread (from /proc/self/task/<pid>/stat: the main thread's tid is the pid) and of the
 * whole process (process.cpuUsage(): every thread, pino's worker included), and VmHWM (peak RSS).
 */
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { setImmediate as yieldLoop, setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';

const env = (name: string, fallback?: string): string => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`host: ${name} is not set`);
  return value;
};

const target = env('BENCH_TARGET');
const options = JSON.parse(env('BENCH_OPTIONS', '{}')) as Record<string, unknown>;
const from = Number(env('BENCH_FROM', '0'));
const lines = Number(env('BENCH_LINES'));
const rate = Number(env('BENCH_RATE', '0'));
const haltAt = process.env.BENCH_HALT_AT === undefined ? undefined : Number(process.env.BENCH_HALT_AT);
const resultPath = env('BENCH_RESULT');
const CHUNK = 1000;

/** CPU seconds of the main thread (utime + stime of the task whose tid is the pid; clock ticks of 10 ms) */
function mainThreadCpuMs(): number {
  const text = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

const processCpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

function peakRssMB(): number {
  const kb = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  return Number(kb) / 1024;
}

const stream = pino.transport({ target, options });
const logger = pino({ level: 'info' }, stream);
// the transport is ready once its worker has loaded it and received pino's config (sent by pino())
await once(stream, 'ready');

const startedAt = Date.now();
const start = { wall: performance.now(), main: mainThreadCpuMs(), proc: processCpuMs() };
const stop = haltAt ?? lines;
for (let i = 0; i < stop; i += CHUNK) {
  for (let j = i; j < Math.min(i + CHUNK, stop); j++) {
    logger.info(
      {
        seqNo: from + j,
        user: `user-${(from + j) % 9973}`,
        route: '/api/v1/items/:id',
        status: 200,
        durationMs: 12.5,
        traceId: '0af7651916cd43dd8448eb211c80319c',
      },
      'request handled',
    );
  }
  if (rate > 0) {
    const due = ((i + CHUNK) / rate) * 1000 - (performance.now() - start.wall);
    if (due > 0) await sleep(due);
  } else await yieldLoop();
}
const logged = {
  wallMs: performance.now() - start.wall,
  mainCpuMs: mainThreadCpuMs() - start.main,
  procCpuMs: processCpuMs() - start.proc,
};

if (haltAt !== undefined) {
  writeFileSync(resultPath, JSON.stringify({ startedAt, logged, peakRssMB: peakRssMB() }));
  process.stdout.write('halted\n');
  setInterval(() => undefined, 60_000);
} else {
  // registered after the transport's 'ready', so after pino's own exit handler: this one runs
  // once pino has flushed and the worker has closed
  process.on('exit', () => {
    const total = {
      wallMs: performance.now() - start.wall,
      mainCpuMs: mainThreadCpuMs() - start.main,
      procCpuMs: processCpuMs() - start.proc,
    };
    writeFileSync(resultPath, JSON.stringify({ startedAt, logged, total, peakRssMB: peakRssMB() }));
  });
}
