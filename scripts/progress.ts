/**
 * The one progress bar of the scripts (demo, bench): a status line on stderr, redrawn with `\r` on
 * a terminal, a line per 25 % of each part otherwise (a log file or CI). Plain text, no dependency.
 * It never writes to stdout, so figures printed there stay clean.
 */

export interface ProgressPart {
  label: string;
  done: number;
  total: number;
  /** shown as `done/total unit` after the bar when given */
  unit?: string;
  /** extra text after the bar, e.g. rate and RSS */
  detail?: string;
}

export interface ProgressOptions {
  stream?: NodeJS.WriteStream;
  /** redraw in place (default: stderr and stdout are terminals and CI is not set) */
  interactive?: boolean;
  intervalMs?: number;
  /** bar width in characters */
  width?: number;
  /** pad every label to this width */
  labelWidth?: number;
  /** text at the end of the line, read at each draw (e.g. the load average) */
  trailer?: () => string;
  /** text in front of the line */
  indent?: string;
}

const count = (n: number) => Math.round(n).toLocaleString('en-US');

function isInteractive(): boolean {
  const terminal = Boolean(process.stdout.isTTY && process.stderr.isTTY);
  return terminal && (!process.env.CI || process.env.CI === 'false');
}

export class Progress {
  private timer?: NodeJS.Timeout;
  private drawn = false;
  private read?: () => ProgressPart[];
  private readonly quarters = new Map<string, number>();
  private readonly stream: NodeJS.WriteStream;
  private readonly interactive: boolean;

  constructor(private readonly opts: ProgressOptions = {}) {
    this.stream = opts.stream ?? process.stderr;
    this.interactive = opts.interactive ?? isInteractive();
  }

  /** Show one part from now on (replacing what was shown). */
  set(part: ProgressPart): void {
    this.follow(() => [part]);
  }

  /** Show the parts `read` returns at each draw. */
  follow(read: () => ProgressPart[]): void {
    this.read = read;
    this.timer ??= setInterval(() => this.draw(), this.opts.intervalMs ?? 200);
    this.timer.unref();
  }

  draw(): void {
    const parts = this.read?.() ?? [];
    if (parts.length === 0) return;
    if (!this.interactive) return this.printQuarters(parts);
    const trailer = this.opts.trailer ? `  ${this.opts.trailer()}` : '';
    const line = `${this.opts.indent ?? ''}${parts.map((p) => this.render(p)).join('  ')}${trailer}`;
    this.stream.write(`\r${line}\x1b[K`);
    this.drawn = true;
  }

  private render(p: ProgressPart): string {
    const width = this.opts.width ?? 20;
    const frac = p.total > 0 ? Math.min(1, Math.max(0, p.done / p.total)) : 1;
    const filled = Math.floor(frac * width);
    const pct = String(Math.floor(frac * 100)).padStart(3);
    const counts = p.unit === undefined ? '' : ` ${count(p.done)}/${count(p.total)} ${p.unit}`;
    const detail = p.detail ? `  ${p.detail}` : '';
    const label = p.label.padEnd(this.opts.labelWidth ?? 0);
    return `${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${pct}%${counts}${detail}`;
  }

  private printQuarters(parts: ProgressPart[]): void {
    for (const p of parts) {
      const quarter = Math.floor((Math.min(p.done, p.total) / Math.max(1, p.total)) * 4);
      if (quarter <= (this.quarters.get(p.label) ?? 0)) continue;
      this.quarters.set(p.label, quarter);
      this.stream.write(
        `${this.opts.indent ?? ''}${p.label} ${quarter * 25}% (${count(p.done)}/${count(p.total)})\n`,
      );
    }
  }

  /** Print a finished line (clearing the bar first); the bar comes back on the next draw. */
  log(line: string): void {
    this.clear();
    this.stream.write(`${line}\n`);
  }

  /** Clear the status line so that another line can be printed. */
  clear(): void {
    if (this.drawn) this.stream.write('\r\x1b[K');
    this.drawn = false;
  }

  /** Stop redrawing; `keep` leaves the last state on its own line, otherwise it is cleared. */
  stop(keep = false): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (keep) this.draw();
    if (keep && this.drawn) this.stream.write('\n');
    else this.clear();
    this.drawn = false;
    this.read = undefined;
  }
}
