import { IntakeClosedError, type Emitter, type PauseReason } from '../src/index.js';

/**
 * The pino transport's inner loop: pino's output (text, split into chunks anywhere) into an
 * emitter's batches, line by line, no faster than its spool takes them. Before each line it looks
 * whether intake takes lines; while intake is paused for seals under way (a pause of moments) it
 * waits, so the lines held in memory are at most the open batch and the batches being sealed; the
 * rest waits in pino's stream (the worker stops reading it, pino's buffers hold the lines until it
 * reads again). While intake is paused for the spool itself (full, writes failing, directory
 * replaced) it does not wait: such a pause lasts as long as the endpoint is down, a wait would grow
 * pino's buffer in the host without bound and block pino's exit handler until it gives up and the
 * worker is killed with every line unsaid. Those lines are refused and counted (`onLost`) instead.
 * A line counts as accepted once it is in the open batch; `flush` makes every accepted line durable.
 *
 * The lines of a chunk are taken in a plain loop, with a promise only where it has to wait: a
 * stream or an async iterator per line cost the worker more than the emitter's add.
 */

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

/** The line's JSON value, or undefined when it is not JSON (or is null, which no logger writes). */
function parsed(line: string): unknown {
  try {
    return JSON.parse(line) ?? undefined;
  } catch {
    return undefined;
  }
}

export class LogFeed {
  private readonly counts: FeedStats = { accepted: 0, pending: 0, peakPending: 0, failed: 0, refused: 0 };
  /** the durable promise of the batch the last line went into, and the lines waiting on it */
  private group?: { durable: Promise<void>; lines: number };
  /** the durable promises of batches not yet settled (one per batch) */
  private readonly unsettled = new Set<Promise<void>>();
  /** resolves at the emitter's next intake pause, change of pause reason, or resume */
  private intakeChanged: Promise<void>;
  private markIntakeChanged = () => undefined as void;
  /** the end of the last chunk after its last newline: the start of a line still coming */
  private partial = '';
  /** `<prefix>.<label>` by level, made once per level */
  private readonly subjects = new Map<unknown, string>();

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

  /**
   * The next chunk of text: each line it completes is added (or refused while the spool cannot take
   * lines), in order. undefined when they all were at once; else a promise that resolves when they
   * have been (intake was paused for seals). The next chunk must wait for it.
   */
  write(chunk: string): Promise<void> | undefined {
    if (this.partial.length === 0) return this.lines(chunk, 0);
    // the line begun in the last chunk ends here: joined on its own, not with the whole chunk (a
    // search in the joined text would copy all of it)
    const nl = chunk.indexOf('\n');
    if (nl < 0) {
      this.partial += chunk;
      return undefined;
    }
    const first = `${this.partial}${chunk.slice(0, nl + 1)}`;
    this.partial = '';
    const taking = this.lines(first, 0);
    if (taking === undefined) return this.lines(chunk, nl + 1);
    return taking.then(() => this.lines(chunk, nl + 1));
  }

  /** The end of the text: a last line without its newline is added too. */
  end(): Promise<void> | undefined {
    const last = this.partial;
    this.partial = '';
    return last.length > 0 ? this.lines(`${last}\n`, 0) : undefined;
  }

  /** The lines of `text` from `from` on; the rest after the last newline is kept for the next chunk. */
  private lines(text: string, from: number): Promise<void> | undefined {
    let start = from;
    for (let nl = text.indexOf('\n', start); nl >= 0; nl = text.indexOf('\n', start)) {
      const room = this.room();
      if (typeof room === 'object') return this.after(room, text, start);
      if (room === undefined) {
        const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl; // '\r\n'
        this.line(text.slice(start, end));
      } else this.refuse(room);
      start = nl + 1;
    }
    if (start < text.length) this.partial = text.slice(start);
    return undefined;
  }

  private async after(waiting: Promise<void>, text: string, from: number): Promise<void> {
    await waiting;
    await this.lines(text, from);
  }

  /**
   * undefined once intake takes the next line; why it is refused (the spool cannot take lines, the
   * emitter is closing); or, while intake waits for seals, a promise that resolves when it is worth
   * looking again (intake accepts, or the pause changes its reason: seals that land on a full spool
   * turn it into 'spool_full').
   */
  private room(): Promise<void> | string | undefined {
    let waiting: Promise<void> | undefined;
    try {
      waiting = this.emitter.whenAccepting();
    } catch (error) {
      if (error instanceof IntakeClosedError) return CLOSING;
      throw error;
    }
    if (waiting === undefined) return undefined;
    return this.spoolRefusal() ?? Promise.race([waiting, this.intakeChanged]);
  }

  /** Why a line is refused now (the spool cannot take it, the emitter is closing), or undefined. */
  private spoolRefusal(): string | undefined {
    let reason: PauseReason | undefined;
    try {
      reason = this.emitter.pauseReason();
    } catch (error) {
      if (error instanceof IntakeClosedError) return CLOSING;
      throw error;
    }
    return reason && refusal(reason, this.emitter.config.spool.dir);
  }

  private refuse(reason: string): void {
    this.counts.refused += 1;
    this.onLost(reason, 1);
  }

  /**
   * One line: `<prefix>.<level label>` with the line's own text as the event's data (it is not
   * serialised again); a JSON value that is not an object (pino writes objects) `<prefix>.unknown`
   * with `{ data, time }`, as pino-abstract-transport wraps it; a line that is not JSON
   * `<prefix>.unparsed` with `{ line }`.
   */
  private line(text: string): void {
    const value = parsed(text);
    if (value === undefined) {
      this.track(this.emitter.add(`${this.subjectPrefix}.unparsed`, { line: text }));
    } else if (!isObject(value)) {
      this.track(this.emitter.add(`${this.subjectPrefix}.unknown`, { data: value, time: Date.now() }));
    } else {
      this.track(this.emitter.add(this.subjectOf(value.level), value, text));
    }
  }

  private subjectOf(level: unknown): string {
    let subject = this.subjects.get(level);
    if (subject === undefined) {
      subject = `${this.subjectPrefix}.${levelLabel(level, this.labels)}`;
      if (this.subjects.size < MAX_SUBJECTS) this.subjects.set(level, subject);
    }
    return subject;
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

/** the levels whose subjects are kept (a line may carry any level) */
const MAX_SUBJECTS = 64;

const CLOSING = 'the transport was closing';
