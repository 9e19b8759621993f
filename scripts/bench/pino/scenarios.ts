/**
 * The three runs of each transport in the pino comparison:
 *   - burst: N lines as fast as the host can log them, then a normal exit
 *   - kill: the host is SIGKILLed after logging N/2 lines, a new host on the same spool logs the
 *     other N/2 and exits normally
 *   - outage: the host logs at a steady rate for 40 s; the receiver is down (connection refused)
 *     from 5 s to 35 s
 * After each, batch-emitter's spool is drained by one more host that logs nothing (it replays the
 * spool at start), so "lost" counts what never arrives, not what is still on its way.
 */
import { tmpdir } from 'node:os';
import { sleep, tempDir } from '../context.js';
import type { Contender } from './contenders.js';
import { startHost, type HostFigures, type HostSpec } from './host-process.js';
import type { CountingReceiver } from './receiver.js';
import { spooledLines } from './spooled.js';

/** the receiver has had nothing new for this long after the host exited: what will come has come */
const QUIET_MS = 5000;
export const OUTAGE = { rate: 5000, seconds: 40, downAtS: 5, downForS: 30 };

export interface Burst {
  host: HostFigures;
  /** distinct lines at the receiver once the host has exited (and it was quiet QUIET_MS) */
  deliveredByExit: number;
  /** the same after a restart on the same spool (batch-emitter only) */
  deliveredAfterRestart: number;
  /** from the start of logging to the last new line at the receiver (before any restart) */
  deliveredInS: number;
  duplicates: number;
}

export interface Loss {
  logged: number;
  lost: number;
  duplicates: number;
}

export interface KillLoss extends Loss {
  /** lines the transport had made durable by the kill: at the receiver, or in its spool */
  durableAtKill?: number;
  /** of those, never delivered after the restart (the promise: zero) */
  durableLost?: number;
}

interface Ctx {
  buildDir: string;
  receiver: CountingReceiver;
  /** progress lines */
  note(line: string): void;
}

async function settle(receiver: CountingReceiver, expected: number): Promise<void> {
  const since = Date.now();
  while (receiver.distinct < expected && Date.now() - Math.max(receiver.lastNewAt, since) < QUIET_MS) {
    await sleep(100);
  }
}

async function runHost(ctx: Ctx, spec: HostSpec): Promise<HostFigures> {
  const host = startHost(ctx.buildDir, spec);
  const code = await host.exited;
  if (code !== 0) throw new Error(`${spec.contender.name} host exited ${code}:\n${host.output()}`);
  return host.figures();
}

/** batch-emitter: one more start on the spool delivers what the last host left in it */
async function drain(ctx: Ctx, c: Contender, spoolDir: string, expected: number): Promise<void> {
  if (!c.spools || ctx.receiver.distinct >= expected) return;
  await runHost(ctx, { contender: c, options: c.options(ctx.receiver, spoolDir), from: 0, lines: 0 });
  await settle(ctx.receiver, expected);
}

export async function burst(ctx: Ctx, c: Contender, lines: number): Promise<Burst> {
  const { receiver } = ctx;
  receiver.reset(lines);
  const spoolDir = tempDir(tmpdir(), 'batch-emitter-bench-pino-');
  const host = await runHost(ctx, { contender: c, options: c.options(receiver, spoolDir), from: 0, lines });
  await settle(receiver, lines);
  const deliveredByExit = receiver.distinct;
  const deliveredInS = (receiver.lastNewAt - host.startedAt) / 1000;
  await drain(ctx, c, spoolDir, lines);
  return {
    host,
    deliveredByExit,
    deliveredAfterRestart: receiver.distinct,
    deliveredInS,
    duplicates: receiver.duplicates,
  };
}

export async function killHalfway(ctx: Ctx, c: Contender, lines: number): Promise<KillLoss> {
  const { receiver } = ctx;
  receiver.reset(lines);
  const spoolDir = tempDir(tmpdir(), 'batch-emitter-bench-pino-');
  const options = c.options(receiver, spoolDir);
  const half = Math.floor(lines / 2);
  const first = startHost(ctx.buildDir, { contender: c, options, from: 0, lines, haltAt: half });
  await Promise.race([first.halted, first.exited]);
  first.child.kill('SIGKILL');
  await first.exited;
  // durable by the kill: delivered already, or in the spool (read while no process holds it)
  const durable = new Set<number>();
  for (let n = 0; n < half; n++) if (receiver.has(n)) durable.add(n);
  if (c.spools) for (const n of await spooledLines(spoolDir)) durable.add(n);
  ctx.note(
    `  ${c.name}: killed after ${half} lines (${receiver.distinct} at the receiver, ${durable.size} durable); restarting`,
  );
  await runHost(ctx, { contender: c, options, from: half, lines: lines - half });
  await settle(receiver, lines);
  await drain(ctx, c, spoolDir, lines);
  const durableLost = [...durable].filter((n) => !receiver.has(n)).length;
  return {
    logged: lines,
    lost: lines - receiver.distinct,
    duplicates: receiver.duplicates,
    ...(c.spools ? { durableAtKill: durable.size, durableLost } : {}),
  };
}

export async function receiverDown(ctx: Ctx, c: Contender): Promise<Loss> {
  const { receiver } = ctx;
  const lines = OUTAGE.rate * OUTAGE.seconds;
  receiver.reset(lines);
  const spoolDir = tempDir(tmpdir(), 'batch-emitter-bench-pino-');
  const host = startHost(ctx.buildDir, {
    contender: c,
    options: c.options(receiver, spoolDir),
    from: 0,
    lines,
    rate: OUTAGE.rate,
  });
  const outage = (async () => {
    await sleep(OUTAGE.downAtS * 1000);
    await receiver.down();
    await sleep(OUTAGE.downForS * 1000);
    await receiver.up();
  })();
  const code = await host.exited;
  await outage;
  if (code !== 0) throw new Error(`${c.name} host exited ${code}:\n${host.output()}`);
  await settle(receiver, lines);
  await drain(ctx, c, spoolDir, lines);
  return { logged: lines, lost: lines - receiver.distinct, duplicates: receiver.duplicates };
}
