import { IntakeClosedError, type Emitter, type PauseReason } from '../src/index.js';

/**
 * The pino transport's inner loop: log lines into an emitter's batches no faster than its spool
 * takes them. Before each line it waits while intake is paused for seals under way (a pause of
 * moments), so the lines held in memory are at most the open batch and the batches being sealed;
 * the rest waits in pino's stream (the worker stops reading it, pino's buffers hold the lines until
 * it reads again). While intake is paused for the spool itself (full, writes failing, directory
 * replaced) it does not wait: such a pause lasts as long as the endpoint is down, a wait would grow
 * pino's buffer in the host without bound and block pino's exit handler until it gives up and the
 * worker is killed with every line unsaid. Those lines are refused and counted (`onLost`) instead.
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
  /** lines whose batch could not be written */
  failed: number;
  /** lines not put into a batch: the spool could not take them (or the emitter was closed) */
  refused: number;
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

/** Why lines are refused while intake is paused for this reason; undefined: wait (seals under way). */
function refusal(reason: PauseReason, spoolDir: string): string | undefined {
  switch (reason) {
    case 'seals_pending':
      return undefined;
    case 'spool_full':
      return `spool full (${spoolDir})`;
    case 'spool_write_failing':
      return `spool writes failing (${spoolDir})`;
    case 'spool_replaced':
      return `spool directory replaced (${spoolDir})`;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export class LogFeed {
  private readonly counts: FeedStats = { accepted: 0, pending: 0, peakPending: 0, failed: 0, refused: 0 };
  /** the durable promise of the batch the last line went into, and the lines waiting on it */
  private group?: { durable: Promise<void>; lines: number };
  /** the durable promises of batches not yet settled (one per batch) */
  private readonly unsettled = new Set<Promise<void>>();
  /** resolves at the emitter's next intake pause, change of pause reason, or resume */
  private intakeChanged: Promise<void>;
  private markIntakeChanged = () => undefined as void;

  constructor(
    private readonly emitter: Emitter,
    private readonly subjectPrefix: string,
    /** lines lost and why: refused (spool full, ...) or in a batch that could not be written */
    private readonly onLost: (reason: string, lines: number) => void,
    private readonly labels: Record<number, string> = DEFAULT_LABELS,
  ) {
    this.intakeChanged = this.nextIntakeChange();
    emitter.events.on('intake', () => {
      const mark = this.markIntakeChanged;
      this.intakeChanged = this.nextIntakeChange();
      mark();
    });
  }

  private nextIntakeChange(): Promise<void> {
    return new Promise((resolve) => (this.markIntakeChanged = resolve));
  }

  get stats(): FeedStats {
    return { ...this.counts };
  }

  /** Resolves once every batch a line went into is durable or failed (close settles them all). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.unsettled]);
  }

  /** Every line of `source`, each once intake takes lines, or refused while the spool cannot. */
  async consume(source: AsyncIterable<ParsedLine>): Promise<void> {
    for await (const line of source) {
      const refused = await this.room();
      if (refused === undefined) this.add(line);
      else this.refuse(refused);
    }
  }

  /**
   * undefined once intake takes a line; while it waits for seals, waits (and looks again when the
   * pause changes its reason: seals that land on a full spool turn it into 'spool_full'); else why
   * the line is refused.
   */
  private async room(): Promise<string | undefined> {
    for (;;) {
      const waiting = this.whenAccepting();
      if (waiting === undefined) return undefined;
      const refused = this.spoolRefusal();
      if (refused !== undefined) return refused;
      await Promise.race([waiting, this.intakeChanged]);
    }
  }

  /** The emitter's whenAccepting(); once it is closing, resolved (the add is then refused). */
  private whenAccepting(): Promise<void> | undefined {
    try {
      return this.emitter.whenAccepting();
    } catch (error) {
      if (error instanceof IntakeClosedError) return Promise.resolve();
      throw error;
    }
  }

  /** Why a line is refused now (the spool cannot take it, the emitter is closing), or undefined. */
  private spoolRefusal(): string | undefined {
    let reason: PauseReason | undefined;
    try {
      reason = this.emitter.pauseReason();
    } catch (error) {
      if (error instanceof IntakeClosedError) return 'the transport was closing';
      throw error;
    }
    return reason && refusal(reason, this.emitter.config.spool.dir);
  }

  private refuse(reason: string): void {
    this.counts.refused += 1;
    this.onLost(reason, 1);
  }

  /** A line that is not JSON: `<prefix>.unparsed` with `{ line }`. */
  addUnparsed(text: string): void {
    const refused = this.spoolRefusal();
    if (refused !== undefined) return this.refuse(refused);
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
    this.unsettled.add(durable);
    durable.then(
      () => {
        c.pending -= group.lines;
        this.unsettled.delete(durable);
      },
      (error: unknown) => {
        c.pending -= group.lines;
        c.failed += group.lines;
        this.unsettled.delete(durable);
        this.onLost(`batch not written to the spool: ${(error as Error).message}`, group.lines);
      },
    );
  }
}
