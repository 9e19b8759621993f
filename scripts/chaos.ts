import { parseArgs } from 'node:util';
import { formatTable, runScenario, scenarios, type Profile, type ScenarioResult } from './chaos/index.js';

/**
 * `npm run chaos [-- --quick] [--only kill,enospc] [--seed N]`
 *
 * Runs each chaos scenario against a real nats-server, the real emitter process
 * (`node --import tsx src/bin.ts run`) and a loopback sink, and prints
 * scenario | published | delivered unique | lost | duplicates | notes.
 * Exit 1 when anything is lost or a scenario could not be assessed (it threw); exit 2 when nothing
 * was lost but a behaviour check failed (a FAIL: note); 0 otherwise.
 * CHAOS_LOG_DIR=<dir> keeps every emitter's log there; CHAOS_EMITTER_LOG_LEVEL sets its level.
 */

const USAGE = 'usage: npm run chaos [-- --quick] [--only <id>[,<id>...]] [--seed <n>]';

const OPTIONS = {
  quick: { type: 'boolean' },
  ci: { type: 'boolean' },
  only: { type: 'string' },
  seed: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function usageError(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(64);
}

function parse(args: string[]): { profile: Profile; only?: string[]; seed: number } {
  const { values } = (() => {
    try {
      return parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false });
    } catch (error) {
      return usageError((error as Error).message);
    }
  })();
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  // as before: the last of --quick / --ci given wins
  const profile: Profile =
    values.quick || values.ci
      ? args.lastIndexOf('--ci') > args.lastIndexOf('--quick')
        ? 'ci'
        : 'quick'
      : 'full';
  const seed = values.seed === undefined ? Date.now() % 1_000_000 : Number(values.seed);
  if (!Number.isInteger(seed)) usageError('--seed needs an integer');
  const only = values.only?.split(',').filter(Boolean);
  return { profile, seed, ...(only ? { only } : {}) };
}

async function main(): Promise<number> {
  const { profile, only, seed } = parse(process.argv.slice(2));
  const all = scenarios(profile, seed);
  const chosen = only ? all.filter((s) => only.some((o) => s.id === o || s.id.startsWith(`${o}-`))) : all;
  if (chosen.length === 0) {
    console.error(`no scenario matches ${only?.join(',')}; ids: ${all.map((s) => s.id).join(', ')}`);
    return 64;
  }
  console.log(`chaos: profile ${profile}, seed ${seed}, ${chosen.length} scenario(s)`);
  const results: ScenarioResult[] = [];
  for (const s of chosen) {
    process.stdout.write(`  ${s.id} ... `);
    const r = await runScenario(s);
    results.push(r);
    const verdict = r.skipped
      ? 'skipped'
      : r.lost > 0
        ? `LOST ${r.lost}`
        : r.failures.length > 0
          ? 'check failed'
          : 'ok';
    console.log(`${verdict} (${(r.durationMs / 1000).toFixed(1)} s)`);
    for (const f of r.failures) console.log(`      FAIL: ${f}`);
  }
  console.log(`\n${formatTable(results)}\n`);
  const lost = results.reduce((n, r) => n + r.lost, 0);
  const errored = results.filter((r) => r.failures.some((f) => f.startsWith('scenario error')));
  const failed = results.filter((r) => r.failures.length > 0);
  if (lost > 0 || errored.length > 0) {
    console.log(
      `chaos: ${lost} item(s) lost${errored.length ? `, ${errored.length} scenario(s) errored` : ''}`,
    );
    return 1;
  }
  if (failed.length > 0) {
    console.log(`chaos: nothing lost; ${failed.length} scenario(s) with failed checks`);
    return 2;
  }
  console.log('chaos: nothing lost');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
