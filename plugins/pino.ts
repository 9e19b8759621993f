import type { Writable } from 'node:stream';
import build from 'pino-abstract-transport';
import { createEmitter, type EmbeddedConfig } from '../src/index.js';
import { LogFeed } from './pino-feed.js';
import { LostLines } from './pino-lost.js';
import { LineSink, pinoLevelLabels } from './pino-sink.js';

/**
 * A pino transport: every log line becomes an event `log.<level label>` (the line's JSON object
 * as its data) in the emitter's batches.
 *
 *   pino({ transport: { target: 'batch-emitter/pino',
 *                       options: { destinationUrl: 'https://...', spoolDir: './log-spool' } } })
 *
 * Options are the embedded configuration (see `createEmitter`) plus `subjectPrefix` (default
 * 'log') and `closeTimeoutS` (default 5); `batchSize` defaults to 5,000 here.
 * pino runs the transport in a worker thread; lines are
 * added without awaiting each one (they are group-committed with their batch), but never faster
 * than the spool takes them (pino-feed.ts): memory holds at most a few batches. On teardown
 * (logger end, process exit) the transport flushes the open batch, waits for deliveries at most
 * closeTimeoutS, and closes: what is not delivered by then stays in the spool for the next start.
 * Keep the whole teardown well under 10 s: pino's exit handler waits that long for the worker.
 * While the spool cannot take lines (full, its writes failing) lines are not waited for but
 * refused and counted; the counts go to stderr at close (pino-lost.ts).
 * A line that is not JSON becomes `log.unparsed` with `{ line }`.
 */

export interface PinoTransportOptions extends Omit<EmbeddedConfig, 'logLevel'> {
  /** subject prefix of the events; default 'log' (-> log.info, log.error, ...) */
  subjectPrefix?: string;
  /** the longest teardown waits for deliveries before closing; default 5 s */
  closeTimeoutS?: number;
  /** the emitter's own log level (it logs to the worker's stdout); default 'warn' */
  logLevel?: EmbeddedConfig['logLevel'];
}

export default async function batchEmitterTransport(options: PinoTransportOptions): Promise<Writable> {
  const { subjectPrefix = 'log', closeTimeoutS = 5, ...rest } = options;
  // pino adds its own keys to a transport's options ($context, pinoWillSendConfig, and levels or
  // dedupe when the logger has them): not ours.
  const config = Object.fromEntries(
    Object.entries(rest).filter(([key]) => !key.startsWith('$') && !PINO_KEYS.has(key)),
  ) as Omit<PinoTransportOptions, 'subjectPrefix' | 'closeTimeoutS'>;
  const emitter = createEmitter({
    logLevel: 'warn',
    shutdownTimeoutS: 2,
    batchSize: DEFAULT_BATCH_SIZE,
    ...config,
  });
  const lost = new LostLines();
  // listening before the start: pino sends its levels as soon as the logger exists
  const labels = pinoLevelLabels();
  const refusal = await startOrRefusal(emitter);
  if (refusal !== undefined) return refusingTransport(refusal, lost);
  const feed = new LogFeed(emitter, subjectPrefix, (reason, lines) => lost.add(reason, lines), await labels);

  return new LineSink(feed, async () => {
    // every step bounded: pino's exit handler gives the worker 10 s, then the process exits
    const deadline = Date.now() + closeTimeoutS * 1000;
    try {
      await until(
        deadline,
        emitter.flush().catch(() => undefined),
      );
      await until(deadline, emitter.wait());
    } finally {
      // deliveries were waited for above: close only seals what is open and writes it (writes
      // still failing are abandoned, their lines rejected and counted)
      emitter.hurry();
      try {
        // bounded too: a spool write that hangs without failing would hold close() past pino's
        // 10 s, and the totals below would never be told
        await until(Math.max(deadline, Date.now()) + CLOSE_GRACE_MS, emitter.close());
      } finally {
        await until(Date.now() + SETTLE_MS, feed.settled());
        lost.report();
      }
    }
  });
}

/**
 * Why the emitter could not start (a spool bound to another destination, a locked spool, a bad
 * option), or undefined once it runs. pino would otherwise see the worker fail without a word: a
 * host that logs and exits gets exit 0 with every line gone.
 */
async function startOrRefusal(emitter: ReturnType<typeof createEmitter>): Promise<string | undefined> {
  try {
    await emitter.start();
    return undefined;
  } catch (error) {
    return `the emitter could not start: ${error instanceof Error ? error.message : String(error)}`;
  }
}

/** A transport that takes every line and counts it as not accepted, for `reason`. */
function refusingTransport(reason: string, lost: LostLines): Writable {
  return build(
    async (source) => {
      source.on('unknown', () => lost.add(reason, 1));
      for await (const _line of source as AsyncIterable<unknown>) lost.add(reason, 1);
    },
    // not waiting for pino's config: the labels listener above has taken it
    { metadata: false, close: async () => lost.report() },
  );
}

/**
 * Lines per batch unless `batchSize` says otherwise. Every batch costs a synced spool write, an
 * HTTP request and the bookkeeping of both, about 2 ms of the host's CPU: with log lines of a few
 * hundred bytes, 1,000 per batch (the emitter's default) spent a sixth of the transport's CPU on
 * that. 5,000 lines of ~350 bytes make a body of ~1.7 MB (the limit, batchMaxBytes, is 5 MiB).
 */
const DEFAULT_BATCH_SIZE = 5000;

/** the keys pino itself puts into a transport's options (pino/lib/transport.js) */
const PINO_KEYS: ReadonlySet<string> = new Set(['pinoWillSendConfig', 'levels', 'dedupe']);

/** past the teardown's deadline, the longest close() may take to seal and write what is open */
const CLOSE_GRACE_MS = 1000;

/** after close, the longest wait for the last batches' outcomes (they settle as close returns) */
const SETTLE_MS = 1000;

/** `work`, or the deadline (epoch ms), whichever comes first. */
async function until(deadline: number, work: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    work,
    new Promise((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now())))),
  ]);
  clearTimeout(timer);
}
