import { brokerReplacedScenario, type BrokerFault } from './broker-replaced.js';
import { uncountedResult, type Profile, type ScenarioResult } from './common.js';
import { corruptScenario } from './corrupt.js';
import { deadLetterScenario } from './dead-letters.js';
import { enospcScenario } from './enospc.js';
import { hostileScenario } from './hostile.js';
import { killScenario } from './kill.js';
import { natsClusterScenario, natsRestartScenario } from './nats.js';
import { sinkFaultScenario, type FaultKind } from './sink-faults.js';
import { spoolDirScenario } from './spool-dir.js';

export type { Profile, ScenarioResult } from './common.js';
export {
  brokerReplacedScenario,
  corruptScenario,
  deadLetterScenario,
  enospcScenario,
  hostileScenario,
  killScenario,
  natsClusterScenario,
  natsRestartScenario,
  spoolDirScenario,
};
export { sinkFaultScenario };

/**
 * The chaos scenarios, sized per profile:
 * full  = `npm run chaos` (20+ kill -9 trials, every sink fault alone and mixed, larger volumes)
 * quick = `npm run chaos -- --quick` (fewer trials, smaller volumes)
 * ci    = test/integration/chaos-ci.test.ts (a few kill trials, nats restart, the sink-fault mix,
 *         corrupt spool, ENOSPC; under ~90 s in all)
 */

export interface Scenario {
  /** short id for --only */
  id: string;
  run(): Promise<ScenarioResult>;
}

export function scenarios(profile: Profile, seed: number): Scenario[] {
  const full = profile === 'full';
  const ci = profile === 'ci';
  const list: Scenario[] = [];
  const size = (f: number, q: number, c: number) => (full ? f : ci ? c : q);

  list.push({
    id: 'kill',
    run: () =>
      killScenario({
        trials: size(24, 8, 3),
        perTrial: size(600, 300, 200),
        seed,
        drainTimeoutMs: size(120_000, 60_000, 40_000),
      }),
  });
  list.push({
    id: 'nats-restart',
    run: () =>
      natsRestartScenario({
        messages: size(6000, 2000, 1500),
        ratePerS: size(600, 500, 500),
        outages: size(2, 1, 1),
        downMs: size(2500, 1500, 1000),
        drainTimeoutMs: size(60_000, 40_000, 30_000),
      }),
  });
  if (!ci) {
    list.push({
      id: 'nats-cluster',
      run: () =>
        natsClusterScenario({
          messages: size(6000, 2000, 1500),
          ratePerS: 600,
          drainTimeoutMs: size(60_000, 40_000, 30_000),
        }),
    });
  }
  const faults: FaultKind[] = full ? ['5xx', 'reset', 'hang', 'slow', '429', 'accept-reset', 'mix'] : ['mix'];
  for (const fault of faults) {
    list.push({
      id: `sink-${fault}`,
      run: () =>
        sinkFaultScenario({
          fault,
          messages: size(fault === 'mix' ? 5000 : 3000, 1500, 1000),
          ratePerS: 1000,
          seed,
          drainTimeoutMs: size(90_000, 60_000, 40_000),
        }),
    });
  }
  list.push({
    id: 'enospc',
    run: () =>
      enospcScenario({
        warmup: size(500, 200, 200),
        // under one batch (TRANSMITTER_BATCH_SIZE 500): the source loop is idle, not blocked, when
        // ack_wait expires, so redeliveries reach the emitter while the write still fails; and the
        // batch body (~10 KB gzipped) never fits in the slack of the log file's last page
        duringOutage: 300,
        clearing: { before: size(500, 500, 200), during: size(2000, 2000, 800) },
        ackWaitS: 2,
        drainTimeoutMs: size(40_000, 30_000, 20_000),
      }),
  });
  list.push({
    id: 'corrupt',
    run: () =>
      corruptScenario({
        messages: size(3000, 1000, 800),
        batchSize: 100,
        drainTimeoutMs: size(40_000, 30_000, 20_000),
      }),
  });
  list.push({
    id: 'dead-letters',
    run: () =>
      deadLetterScenario({
        messages: size(6000, 3000, 2500),
        ratePerS: size(1000, 1000, 1000),
        drainTimeoutMs: size(60_000, 40_000, 30_000),
      }),
  });
  list.push({
    id: 'spool-dir',
    run: () =>
      spoolDirScenario({
        before: size(2000, 1000, 500),
        after: size(8000, 3000, 1500),
        ratePerS: size(2000, 1500, 1500),
        drainTimeoutMs: size(60_000, 40_000, 30_000),
      }),
  });
  const brokerFaults: BrokerFault[] = ['stream-recreated', 'stream-deleted', 'consumer-deleted'];
  for (const fault of brokerFaults) {
    list.push({
      id: fault,
      run: () =>
        brokerReplacedScenario({
          fault,
          messages: size(6000, 3000, 1500),
          ratePerS: size(600, 500, 500),
          drainTimeoutMs: size(60_000, 40_000, 30_000),
        }),
    });
  }
  if (!ci) list.push({ id: 'hostile', run: () => hostileScenario({ good: size(1000, 300, 300) }) });
  return list;
}

/** Run one scenario; a thrown error becomes a failed row (never an unhandled crash of the run). */
export async function runScenario(s: Scenario): Promise<ScenarioResult> {
  const started = Date.now();
  try {
    return await s.run();
  } catch (error) {
    return uncountedResult(s.id, started, {
      failures: [`scenario error: ${(error as Error).stack ?? String(error)}`],
      notes: [`ERROR: ${(error as Error).message}`],
    });
  }
}

function pad(text: string, width: number): string {
  return text + ' '.repeat(Math.max(0, width - text.length));
}

/** The result table: scenario | published | delivered unique | lost | duplicates | notes. */
export function formatTable(results: ScenarioResult[]): string {
  const header = ['scenario', 'published', 'delivered unique', 'lost', 'duplicates', 'notes'];
  const rows = results.map((r) => {
    const lost = r.skipped
      ? '-'
      : String(r.lost) + (r.quarantined > 0 ? ` (+${r.quarantined} quarantined)` : '');
    const dups = r.skipped ? '-' : `${r.duplicates} (same key ${r.dupSameKey}, diff key ${r.dupDiffKey})`;
    const notes = [
      ...r.failures.map((f) => `FAIL: ${f.split('\n')[0]}`),
      ...r.notes,
      `${(r.durationMs / 1000).toFixed(1)} s`,
    ];
    return [
      r.name,
      r.skipped ? '-' : String(r.published),
      r.skipped ? '-' : String(r.deliveredUnique),
      lost,
      dups,
      notes.join('; '),
    ];
  });
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.slice().map((r) => (i === 5 ? 0 : (r[i] ?? '').length))),
  );
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 5 ? c : pad(c, widths[i] ?? 0))).join(' | ')} |`;
  return [
    line(header),
    `|${widths.map((w, i) => '-'.repeat(i === 5 ? 7 : w + 2)).join('|')}|`,
    ...rows.map(line),
  ].join('\n');
}
