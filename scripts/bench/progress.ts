/** One plain-text progress line on stderr, redrawn with `\r` (no ANSI colours, no dependency). */
import { loadAverage } from './proc.js';

export interface ProgressState {
  phase: string;
  done: number;
  total: number;
  unit: string;
  /** extra text after the bar, e.g. rate and RSS */
  detail?: string;
}

const WIDTH = 24;

export class Progress {
  private timer?: NodeJS.Timeout;
  private width = 0;
  private state?: ProgressState;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {}

  set(state: ProgressState): void {
    this.state = state;
    this.timer ??= setInterval(() => this.draw(), 200);
    this.timer.unref();
  }

  private draw(): void {
    const s = this.state;
    if (!s) return;
    const frac = s.total > 0 ? Math.min(1, Math.max(0, s.done / s.total)) : 0;
    const filled = Math.round(frac * WIDTH);
    const load = loadAverage()[0].toFixed(2);
    const line =
      `${s.phase.padEnd(14)} [${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${String(Math.floor(frac * 100)).padStart(3)}% ` +
      `${Math.round(s.done).toLocaleString('en-US')}/${Math.round(s.total).toLocaleString('en-US')} ${s.unit}` +
      `${s.detail ? `  ${s.detail}` : ''}  load ${load}`;
    const pad = Math.max(0, this.width - line.length);
    this.stream.write(`\r${line}${' '.repeat(pad)}`);
    this.width = line.length;
  }

  /** Print a finished line (clearing the bar first); the bar comes back on the next set(). */
  log(line: string): void {
    this.clear();
    this.stream.write(`${line}\n`);
  }

  clear(): void {
    if (this.width > 0) this.stream.write(`\r${' '.repeat(this.width)}\r`);
    this.width = 0;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.state = undefined;
    this.clear();
  }
}
