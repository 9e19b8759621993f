/** The pino comparison's table (markdown, as the README shows it). */
import { fmt } from '../context.js';
import type { PinoResult } from './run.js';
import { OUTAGE, type Burst } from './scenarios.js';

/** "a-b" over the repeats (one figure when they agree at that precision) */
function range(bursts: Burst[], pick: (b: Burst) => number, digits = 0): string {
  const values = bursts.map(pick).filter(Number.isFinite);
  if (values.length === 0) return 'n/a';
  const lo = fmt(Math.min(...values), digits);
  const hi = fmt(Math.max(...values), digits);
  return lo === hi ? lo : `${lo}-${hi}`;
}

const seconds = (ms: number) => ms / 1000;

/** lost (and, for a spool, lost of what was durable at the kill), and lines delivered twice */
function killCell(r: PinoResult): string {
  const k = r.kill;
  const durable =
    k.durableAtKill === undefined
      ? ''
      : ` (of ${fmt(k.durableAtKill)} in the spool or delivered: ${fmt(k.durableLost ?? NaN)})`;
  const twice = k.duplicates > 0 ? `; ${fmt(k.duplicates)} twice` : '';
  return `${fmt(k.lost)}${durable}${twice}`;
}

function row(r: PinoResult, lines: number): string {
  const b = r.bursts;
  const complete = b.filter((x) => x.deliveredByExit === lines);
  const cells = [
    r.name,
    range(b, (x) => seconds(x.host.logged.wallMs), 2),
    range(b, (x) => seconds(x.host.logged.mainCpuMs), 2),
    range(b, (x) => seconds(x.host.total?.procCpuMs ?? NaN), 2),
    range(b, (x) => x.host.peakRssMB),
    `${range(b, (x) => x.deliveredByExit)} / ${range(b, (x) => x.deliveredAfterRestart)}`,
    complete.length > 0 ? range(complete, (x) => x.deliveredInS, 1) : 'never',
    range(b, (x) => x.deliveredByExit / x.deliveredInS),
    killCell(r),
    `${fmt(r.outage.lost)}`,
  ];
  return `| ${cells.join(' | ')} |`;
}

export function pinoTable(results: PinoResult[], lines: number): string {
  const head = [
    'transport',
    `logging ${fmt(lines)} lines: wall s`,
    'main-thread CPU s while logging',
    'host CPU s in all (all threads, to exit)',
    'host peak RSS MB',
    'delivered by exit / after a restart',
    's until the receiver has every line',
    'lines/s delivered',
    `lost: SIGKILL at ${fmt(lines / 2)}, restart`,
    `lost: receiver down ${OUTAGE.downForS} s (${fmt(OUTAGE.rate * OUTAGE.seconds)} lines at ${fmt(OUTAGE.rate)}/s)`,
  ];
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => ' --- ').join('|')}|`,
    ...results.map((r) => row(r, lines)),
  ].join('\n');
}
