import { writeSync } from 'node:fs';

/**
 * The log lines the pino transport could not take, counted by reason and told on stderr: a notice
 * when a reason first appears, the totals at close. Written with a synchronous write to fd 2: a
 * worker thread's `process.stderr` goes through the host's main thread, which at exit is blocked
 * in pino's exit handler (and then exits), so those lines would never be printed.
 */

const PREFIX = 'batch-emitter/pino';

function writeStderr(text: string): void {
  try {
    writeSync(2, text);
  } catch {
    // a full non-blocking pipe (EAGAIN): hand it to the stream instead
    process.stderr.write(text);
  }
}

export class LostLines {
  private readonly byReason = new Map<string, number>();

  constructor(private readonly write: (text: string) => void = writeStderr) {}

  add(reason: string, lines: number): void {
    const seen = this.byReason.get(reason);
    if (seen === undefined) {
      this.write(`${PREFIX}: log lines not accepted: ${reason}; counting them, the total comes at close\n`);
    }
    this.byReason.set(reason, (seen ?? 0) + lines);
  }

  /** One line per reason: `batch-emitter/pino: 17000 log lines not accepted: spool full (<dir>)`. */
  report(): void {
    for (const [reason, n] of this.byReason)
      this.write(`${PREFIX}: ${n} log lines not accepted: ${reason}\n`);
  }
}
