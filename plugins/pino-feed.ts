import type { Emitter } from '../src/index.js';

/**
 * The pino transport's inner loop: log lines into an emitter's batches no faster than its spool
 * takes them. Before each line it waits while intake is paused (seals pending, spool full), so the
 * lines held in memory are at most the open batch and the batches being sealed; the rest waits in
 * pino's stream (the worker stops reading it, pino's buffers hold the lines until it reads again).
 * A line counts as accepted once it is in the open batch; `flush` makes every accepted line durable.
 */

/** A line as the transport's parser hands it over: the parsed value and the text it came from. */
export interface ParsedLine {
  value: unknown;
  text: string;
}

export interface FeedStats {
  /** lines put into batches */
  accepted: number;
  /** accepted lines whose batch is not yet durable in the spool (the in-memory queue) */
  pending: number;
  /** the most `pending` has been */
  peakPending: number;
  /** lines whose batch could not be written (or which were refused) */
  failed: number;
}

const DEFAULT_LABELS: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

function levelLabel(level: unknown, labels: Record<number, string>): string {
  if (typeof level === 'string' && level.length > 0) return level;
  if (typeof level === 'number') return labels[level] ?? DEFAULT_LABELS[level] ?? `level${level}`;
  return 'unknown';
}

/** pino-abstract-transport's `parseLine`: JSON.parse, keeping the text (null is no line: 'unknown') */
export function parseLine(text: string): ParsedLine {
  const value: unknown = JSON.parse(text);
  if (value === null) throw new Error('null is not a log line');
  return { value, text };
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export class LogFeed {
  private readonly counts: FeedStats = { accepted: 0, pending: 0, peakPending: 0, failed: 0 };
  /** the durable promise of the batch the last line went into, and the lines waiting on it */
  private group?: { durable: Promise<void>; lines: number };

  constructor(
    private readonly emitter: Emitter,
    private readonly subjectPrefix: string,
    private readonly onFailed: (error: unknown, lines: number) => void,
    private readonly labels: Record<number, string> = DEFAULT_LABELS,
  ) {}

  get stats(): FeedStats {
    return { ...this.counts };
  }

  /** Every line of `source`, each once intake takes lines. */
  async consume(source: AsyncIterable<ParsedLine>): Promise<void> {
    for await (const line of source) {
      const waiting = this.emitter.whenAccepting();
      if (waiting) await waiting;
      this.add(line);
    }
  }

  /** A line that is not JSON: `<prefix>.unparsed` with `{ line }`. */
  addUnparsed(text: string): void {
    this.track(this.emitter.add(`${this.subjectPrefix}.unparsed`, { line: text }));
  }

  private add({ value, text }: ParsedLine): void {
    if (!isObject(value)) {
      // a JSON line that is not an object (pino writes objects): kept as pino-abstract-transport does
      this.track(this.emitter.add(`${this.subjectPrefix}.unknown`, { data: value, time: Date.now() }));
      return;
    }
    const subject = `${this.subjectPrefix}.${levelLabel(value.level, this.labels)}`;
    // the line's own text goes into the batch: it is not serialised again
    this.track(this.emitter.add(subject, value, text));
  }

  /** Count a line against its batch's durable promise (one per batch, shared by its lines). */
  private track(durable: Promise<void>): void {
    const c = this.counts;
    c.accepted += 1;
    c.pending += 1;
    if (c.pending > c.peakPending) c.peakPending = c.pending;
    if (this.group?.durable === durable) {
      this.group.lines += 1;
      return;
    }
    const group = { durable, lines: 1 };
    this.group = group;
    durable.then(
      () => (c.pending -= group.lines),
      (error: unknown) => {
        c.pending -= group.lines;
        c.failed += group.lines;
        this.onFailed(error, group.lines);
      },
    );
  }
}
