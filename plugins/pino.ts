import type { Transform } from 'node:stream';
import build from 'pino-abstract-transport';
import { createEmitter, type EmbeddedConfig } from '../src/index.js';

/**
 * A pino transport: every log line becomes an event `log.<level label>` (the line's JSON object
 * as its data) in the emitter's batches.
 *
 *   pino({ transport: { target: 'batch-emitter/pino',
 *                       options: { destinationUrl: 'https://...', spoolDir: './log-spool' } } })
 *
 * Options are the embedded configuration (see `createEmitter`) plus `subjectPrefix` (default
 * 'log') and `closeTimeoutS` (default 5). pino runs the transport in a worker thread; lines are
 * added without awaiting each one (they are group-committed with their batch). On teardown
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

const DEFAULT_LABELS: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

interface PinoConfigured {
  levels?: { labels?: Record<number, string> };
}

function levelLabel(level: unknown, labels: Record<number, string>): string {
  if (typeof level === 'string' && level.length > 0) return level;
  if (typeof level === 'number') return labels[level] ?? DEFAULT_LABELS[level] ?? `level${level}`;
  return 'unknown';
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
  const onAddFailed = (error: unknown) => {
    failures += 1;
    if (failures === 1) {
      process.stderr.write(`batch-emitter/pino: a log line was not accepted: ${(error as Error).message}\n`);
    }
  };

  return build(
    async (source) => {
      const labels = (source as unknown as PinoConfigured).levels?.labels ?? DEFAULT_LABELS;
      source.on('unknown', (line: string) => {
        emitter.add(`${subjectPrefix}.unparsed`, { line }).catch(onAddFailed);
      });
      for await (const line of source as AsyncIterable<Record<string, unknown>>) {
        emitter.add(`${subjectPrefix}.${levelLabel(line.level, labels)}`, line).catch(onAddFailed);
      }
    },
    {
      expectPinoConfig: true,
      async close() {
        try {
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
