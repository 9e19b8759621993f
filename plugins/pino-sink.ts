import { StringDecoder } from 'node:string_decoder';
import { Writable } from 'node:stream';
import { parentPort, workerData } from 'node:worker_threads';
import type { LogFeed } from './pino-feed.js';

/**
 * The stream pino's worker writes the host's log text into (thread-stream writes a string per read
 * of its shared buffer, many lines at a time): each chunk goes to the feed whole, and the next one
 * is taken once the feed has taken its lines (a chunk's callback waits while intake waits for
 * seals, so thread-stream stops reading and pino's buffer holds the rest). At the end, `close`
 * runs when the stream is destroyed (as pino-abstract-transport does), and thread-stream ends the
 * worker at its 'close'. Strings pass as they are: no encoding to a Buffer and back.
 */
export class LineSink extends Writable {
  private decoder?: StringDecoder;

  constructor(
    private readonly feed: LogFeed,
    private readonly onClose: () => Promise<void> = () => Promise.resolve(),
  ) {
    super({ decodeStrings: false });
  }

  override _write(
    chunk: string | Buffer,
    _encoding: BufferEncoding,
    done: (error?: Error | null) => void,
  ): void {
    settle(() => this.feed.write(typeof chunk === 'string' ? chunk : this.text(chunk)), done);
  }

  override _final(done: (error?: Error | null) => void): void {
    settle(() => {
      const rest = this.decoder?.end();
      const taking = rest ? this.feed.write(rest) : undefined;
      return taking === undefined ? this.feed.end() : taking.then(() => this.feed.end());
    }, done);
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    this.onClose().then(
      () => done(error),
      () => done(error),
    );
  }

  /** Bytes (a writer other than thread-stream): decoded across chunks, a character may be split. */
  private text(chunk: Buffer): string {
    this.decoder ??= new StringDecoder('utf8');
    return this.decoder.write(chunk);
  }
}

/** `done` once `work` is done: at once when it returns undefined, else when its promise settles. */
function settle(work: () => Promise<void> | undefined, done: (error?: Error | null) => void): void {
  let taking: Promise<void> | undefined;
  try {
    taking = work();
  } catch (error) {
    return done(error as Error);
  }
  if (taking === undefined) done();
  else taking.then(() => done(), done);
}

interface PinoConfig {
  levels?: { labels?: Record<number, string> };
}

/**
 * The level labels pino sends the worker once the logger exists (its custom levels too), when it
 * said it would (pino 8.19 and later); undefined otherwise (the default labels then).
 */
export function pinoLevelLabels(): Promise<Record<number, string> | undefined> {
  const port = parentPort;
  const willSend = (workerData as { workerData?: { pinoWillSendConfig?: boolean } } | undefined)?.workerData
    ?.pinoWillSendConfig;
  if (port === null || willSend !== true) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const onMessage = (message: { code?: string; config?: PinoConfig } | undefined) => {
      if (message?.code !== 'PINO_CONFIG') return;
      port.off('message', onMessage);
      resolve(message.config?.levels?.labels);
    };
    port.on('message', onMessage);
  });
}
