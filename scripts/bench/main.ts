/** The bench's main: set up, run one part (--only) or all of them, print the table, write the files. */
import { connect } from '@nats-io/transport-node';
import { progress } from './context.js';
import { costTable } from './cost-report.js';
import { formatProfile } from './cpuprofile.js';
import type { Env } from './e2e.js';
import { measureAll, type FullRun } from './full.js';
import { runOnly } from './only.js';
import { runPino } from './pino/run.js';
import { fullRunRows, table } from './report.js';
import { writeFullRun } from './results.js';
import { scaleTable } from './scale-report.js';
import { ONLY } from './settings.js';
import { loads, setUp, tearDown, type Setup } from './setup.js';

function printFullRun(b: Setup, r: FullRun, printed: string, loadEnd: number[]): void {
  process.stdout.write(`\n${printed}\n`);
  process.stdout.write(
    `load average: start ${loads(b.loadStart)}, end ${loads(loadEnd)} ` +
      `(${b.machine.nproc} cores; other work on the machine skews every figure)\n`,
  );
  process.stdout.write(
    `spool: disk = ${b.root} (${b.machine.spoolDiskFs}), tmpfs = ${b.shmParent}; both LevelDB with sync writes. ` +
      `Outage = sink answers 503; retry 0.5 s..2 s, breaker reset 2 s.\n`,
  );
  if (r.scale) process.stdout.write(`\n${scaleTable(r.scale)}\n`);
  if (r.prof?.profile) process.stdout.write(`\n${formatProfile(r.prof.profile)}\n`);
  process.stdout.write(`\n${costTable(r.raw, r.disk, r.plain, r.prof?.profile).text}\n`);
}

async function fullRun(b: Setup): Promise<void> {
  const nats = b.nats as NonNullable<Setup['nats']>;
  const env: Env = { nats, sink: b.sink, logDir: b.logDir };
  const nc = await connect({ servers: nats.url, name: 'bench-publisher', noAsyncTraces: true });
  const r = await measureAll(b, env, nc);
  const loadEnd = await tearDown(b, nc);
  const rows = fullRunRows(r);
  printFullRun(b, r, table(rows), loadEnd);
  writeFullRun(b, r, rows, loadEnd);
}

export async function main(): Promise<number> {
  if (ONLY === 'pino') {
    await runPino();
    return 0;
  }
  const b = await setUp();
  await (ONLY !== undefined ? runOnly(ONLY, b) : fullRun(b));
  return 0;
}

export function run(): void {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      progress.stop();
      process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    },
  );
}
