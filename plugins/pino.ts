import type { Transform } from 'node:stream';
import build from 'pino-abstract-transport';
import { createEmitter, type EmbeddedConfig } from '../src/index.js';
import { LogFeed, parseLine, type ParsedLine } from './pino-feed.js';

/**
 * A pino transport: every log line becomes an event `log.<level label>` (the line's JSON object
 * as its data) in the emitter's batches.
 *
 *   pino({ transport: { target: 'batch-emitter/pino',
 *                       options: { destinationUrl: 'https://...', spoolDir: './log-spool' } } })
 *
 * Options are the embedded configuration (see `createEmitter`) plus `subjectPrefix` (default
 * 'log') and `closeTimeoutS` (default 5). pino runs the transport in a worker thread; lines are
 * added without awaiting each one (they are group-committed with their batch), but never faster
 * than the spool takes them (pino-feed.ts): memory holds at most a few batches. On teardown
 * (logger end, process exit) the transport flushes the open batch, waits for deliveries at most
 * closeTimeoutS, and closes: what is not delivered by then stays in the spool for the next start.
 * Keep the whole teardown well under 10 s: pino's exit handler waits that long for the worker.
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

interface PinoConfigured {
  levels?: { labels?: Record<number, string> };
}

export default async function batchEmitterTransport(options: PinoTransportOptions): Promise<Transform> {
  const { subjectPrefix = 'log', closeTimeoutS = 5, ...rest } = options;
  // pino adds its own keys to a transport's options ($context, pinoWillSendConfig): not ours.
  const config = Object.fromEntries(
    Object.entries(rest).filter(([key]) => !key.startsWith('$') && key !== 'pinoWillSendConfig'),
  ) as Omit<PinoTransportOptions, 'subjectPrefix' | 'closeTimeoutS'>;
  const emitter = createEmitter({ logLevel: 'warn', shutdownTimeoutS: 2, ...config });
  await emitter.start();
  let failures = 0;
  const onFailed = (error: unknown, lines: number) => {
    if (failures === 0) {
      process.stderr.write(`batch-emitter/pino: log lines were not accepted: ${(error as Error).message}\n`);
    }
    failures += lines;
  };
  let feeding: Promise<void> = Promise.resolve();

  return build(
    (source) => {
      const labels = (source as unknown as PinoConfigured).levels?.labels;
      const feed = new LogFeed(emitter, subjectPrefix, onFailed, labels);
      source.on('unknown', (line: string) => feed.addUnparsed(line));
      feeding = feed.consume(source as AsyncIterable<ParsedLine>);
      return feeding;
    },
    {
      expectPinoConfig: true,
      parseLine,
      metadata: false,
      async close() {
        try {
          // the source has ended; the feed may still be waiting to put its last lines into a batch
          await feeding.catch(() => undefined);
          await emitter.flush();
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            emitter.wait(),
            new Promise((resolve) => (timer = setTimeout(resolve, closeTimeoutS * 1000))),
          ]);
          clearTimeout(timer);
        } finally {
          await emitter.close();
        }
        if (failures > 0) process.stderr.write(`batch-emitter/pino: ${failures} log lines not accepted\n`);
      },
    },
  );
}
