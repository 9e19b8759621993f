import { startNats } from '../../harness/nats.js';
import { sampleMessages } from '../../harness/workload.js';
import {
  chaosEnv,
  describeDecisions,
  drained,
  logMessages,
  Publisher,
  resultFrom,
  Rng,
  sleep,
  startChaosSink,
  startEmitter,
  tally,
  tempDir,
  toRaw,
  type ScenarioResult,
} from './common.js';

/**
 * Scenario 1: kill -9 of the emitter at random moments, restarted after each kill. Publishing
 * goes on in the background while the emitter starts, replays, seals, writes and posts; each
 * trial draws a batch size, a seal interval, a sink latency (sometimes the sink is down, so the
 * spool grows and the next start has something to replay) and a kill moment: either counted from
 * the spawn (start-up, spool replay) or from the "running" line. At the end one emitter runs
 * until every published item is stored by the sink.
 */

export interface KillParams {
  trials: number;
  perTrial: number;
  seed: number;
  drainTimeoutMs: number;
}

export async function killScenario(p: KillParams): Promise<ScenarioResult> {
  const started = Date.now();
  const rng = new Rng(p.seed);
  const [nats, sink, spool] = await Promise.all([startNats(), startChaosSink(), tempDir('kill')]);
  const pub = await Publisher.connect([nats.url]);
  const notes: string[] = [];
  const failures: string[] = [];
  const phases = { beforeRunning: 0, afterRunning: 0, exitedBeforeKill: 0 };
  const delays: number[] = [];
  let sinkLatencyMs = 0;
  const sinkRng = new Rng(p.seed ^ 0x5eed);
  sink.setPolicy(() =>
    sinkLatencyMs > 0 ? { kind: 'ok', delayMs: sinkRng.int(0, sinkLatencyMs) } : { kind: 'ok' },
  );
  const all = toRaw(sampleMessages(p.trials * p.perTrial, `kill${p.seed}-`));
  try {
    for (let t = 0; t < p.trials; t++) {
      const batchSize = rng.pick([10, 50, 100, 200, 500]);
      const interval = rng.pick([0.02, 0.05, 0.1, 0.3, 1]);
      sinkLatencyMs = rng.pick([0, 0, 30, 150, 600]);
      const sinkDown = rng.chance(0.15);
      if (sinkDown) await sink.down();
      else await sink.up();
      const env = chaosEnv({
        natsUrl: nats.url,
        sinkUrl: sink.url,
        spoolDir: spool.path,
        extra: {
          TRANSMITTER_BATCH_SIZE: String(batchSize),
          TRANSMITTER_BATCH_INTERVAL_S: String(interval),
          TRANSMITTER_CONCURRENCY: String(rng.pick([1, 2, 4])),
          TRANSMITTER_LOG_LEVEL: 'warn',
        },
      });
      // warn level has no "running" line: ask for info only when the kill is timed from it
      const fromRunning = rng.chance(0.6);
      if (fromRunning) env.TRANSMITTER_LOG_LEVEL = 'info';
      const chunk = all.slice(t * p.perTrial, (t + 1) * p.perTrial);
      const proc = startEmitter(env);
      const publishing = pub.publish(chunk, { window: 50, ratePerS: rng.pick([300, 1000, 3000]) });
      let delay: number;
      if (fromRunning) {
        await Promise.race([proc.running, proc.exited]).catch(() => undefined);
        delay = rng.int(0, 2500);
        phases.afterRunning += 1;
      } else {
        // start-up takes ~2.5 s here: this spans loading, spool open and replay
        delay = rng.int(800, 3500);
        phases.beforeRunning += 1;
      }
      delays.push(delay);
      await Promise.race([sleep(delay), proc.exited]);
      if (proc.hasExited) {
        phases.exitedBeforeKill += 1;
        failures.push(
          `trial ${t}: emitter exited by itself (${await proc.exited}): ${proc.logs().slice(-500)}`,
        );
      }
      proc.kill('SIGKILL');
      await proc.exited;
      await publishing;
    }
    await sink.up();
    sinkLatencyMs = 0;
    const final = startEmitter(
      chaosEnv({
        natsUrl: nats.url,
        sinkUrl: sink.url,
        spoolDir: spool.path,
        extra: { TRANSMITTER_BATCH_SIZE: '200' },
      }),
    );
    // wait for "running" even when everything is already delivered: a SIGTERM before the signal
    // handlers are installed would just terminate the process
    await final.running.catch((e: Error) => failures.push(`final emitter: ${e.message.split('\n')[0]}`));
    const ok = await drained(pub.published, sink, p.drainTimeoutMs);
    if (!ok) failures.push(`not everything delivered within ${p.drainTimeoutMs} ms after the last restart`);
    // a short quiet period lets late re-sends show up as duplicates rather than go unseen
    await sleep(500);
    const code = await final.stop();
    if (code !== 0) failures.push(`final emitter exited ${code} on SIGTERM`);
    const errors = logMessages(final.logs());
    if (errors.length > 0)
      notes.push(`final run logged errors: ${[...new Set(errors)].slice(0, 3).join('; ')}`);
    const t = tally(pub.published, sink.stored);
    const sorted = [...delays].sort((a, b) => a - b);
    notes.unshift(
      `${p.trials} kill -9 (${phases.beforeRunning} timed from spawn, ${phases.afterRunning} from "running"), ` +
        `delays ${sorted[0]}..${sorted[sorted.length - 1]} ms, seed ${p.seed}`,
    );
    if (t.duplicates > 0)
      notes.push(
        `duplicates: ${t.dupSameKey} re-sent batches (same idempotency-key), ${t.dupDiffKey} in two batches`,
      );
    if (pub.failed.size > 0) notes.push(`${pub.failed.size} publishes never acknowledged (not counted)`);
    notes.push(`sink: ${describeDecisions(sink.decisions)}`);
    return resultFrom('1 kill -9 x' + p.trials, t, started, notes, failures);
  } finally {
    await pub.close();
    await Promise.all([nats.stop(), sink.close()]);
    await spool.remove();
  }
}
