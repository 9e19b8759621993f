/**
 * `npm run bench -- --only pino`: batch-emitter's pino transport against pino-loki and
 * pino-opentelemetry-transport, in one run, each to a loopback receiver of its own protocol
 * (receiver.ts). Builds src/, machines/, plugins/ and the host with esbuild (pino's worker thread
 * loads JavaScript only), runs scenarios.ts for each transport, prints the table and merges the
 * figures into bench-results/bench.json as "pino".
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fmt, OUT_DIR, REPO, say } from '../context.js';
import { loadAverage, machineInfo } from '../proc.js';
import { mergePart } from '../results.js';
import { QUICK, S } from '../settings.js';
import { contenders, versionOf } from './contenders.js';
import { CountingReceiver } from './receiver.js';
import {
  burst,
  killHalfway,
  OUTAGE,
  receiverDown,
  type Burst,
  type KillLoss,
  type Loss,
} from './scenarios.js';
import { pinoTable } from './table.js';

export interface PinoResult {
  name: string;
  bursts: Burst[];
  kill: KillLoss;
  outage: Loss;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return tsFiles(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

async function build(outDir: string): Promise<void> {
  const esbuild = await import('esbuild');
  rmSync(outDir, { recursive: true, force: true });
  await esbuild.build({
    entryPoints: [
      ...['src', 'machines', 'plugins'].flatMap((d) => tsFiles(join(REPO, d))),
      join(REPO, 'scripts', 'bench', 'pino', 'host.ts'),
    ],
    outdir: outDir,
    outbase: REPO,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    bundle: false,
    logLevel: 'silent',
  });
}

export async function runPino(): Promise<void> {
  const lines = S.pinoLines;
  const buildDir = join(OUT_DIR, 'pino-build');
  await build(buildDir);
  const loadStart = loadAverage();
  const machine = machineInfo('n/a', OUT_DIR);
  say(
    `pino transports: ${fmt(lines)} lines of ~200 B per burst (x${S.pinoRepeats}), pino ${versionOf('pino')}, ` +
      `Node ${process.versions.node}, ${machine.nproc} x ${machine.model}; load average ${loadStart.map((v) => v.toFixed(2)).join(' ')}`,
  );
  const receiver = await CountingReceiver.start();
  const ctx = { buildDir, receiver, note: say };
  const results: PinoResult[] = [];
  try {
    for (const c of contenders(buildDir)) {
      const bursts: Burst[] = [];
      for (let r = 0; r < S.pinoRepeats; r++) {
        bursts.push(await burst(ctx, c, lines));
        const b = bursts[bursts.length - 1] as Burst;
        say(
          `${c.name}: burst ${r + 1}: logged in ${fmt(b.host.logged.wallMs)} ms (main thread CPU ${fmt(b.host.logged.mainCpuMs)} ms), ` +
            `peak RSS ${fmt(b.host.peakRssMB)} MB, delivered ${fmt(b.deliveredByExit)} by exit, ${fmt(b.deliveredAfterRestart)} in all`,
        );
      }
      const kill = await killHalfway(ctx, c, lines);
      const ofDurable =
        kill.durableAtKill === undefined
          ? ''
          : `; of the ${fmt(kill.durableAtKill)} durable at the kill, ${fmt(kill.durableLost ?? NaN)} lost`;
      say(`${c.name}: SIGKILL halfway + restart: ${fmt(kill.lost)} of ${fmt(kill.logged)} lost${ofDurable}`);
      const outage = await receiverDown(ctx, c);
      say(`${c.name}: receiver down ${OUTAGE.downForS} s: ${fmt(outage.lost)} of ${fmt(outage.logged)} lost`);
      results.push({ name: c.name, bursts, kill, outage });
    }
  } finally {
    await receiver.close();
  }
  const loadEnd = loadAverage();
  process.stdout.write(`\n${pinoTable(results, lines)}\n`);
  process.stdout.write(
    `load average: start ${loadStart.map((v) => v.toFixed(2)).join(' ')}, end ${loadEnd.map((v) => v.toFixed(2)).join(' ')}\n`,
  );
  mergePart('pino', {
    lines,
    quick: QUICK,
    results,
    machine,
    loadAverage: { start: loadStart, end: loadEnd },
  });
}
