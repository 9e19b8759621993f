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
  type Decision,
  type FaultPolicy,
  type ScenarioResult,
} from './common.js';

/**
 * Scenario 3: a misbehaving receiver. Each fault alone, and a mix of all of them:
 * 30% 5xx; connection resets; hangs past TRANSMITTER_REQUEST_TIMEOUT_S; slow answers (under the
 * timeout); bursts of 429 with Retry-After; and a receiver that reads and stores the body, then
 * destroys the socket before answering (the answer is lost: the re-send is a duplicate with the
 * same idempotency-key, which is what the key is for).
 */

export type FaultKind = '5xx' | 'reset' | 'hang' | 'slow' | '429' | 'accept-reset' | 'mix';

export interface SinkFaultParams {
  fault: FaultKind;
  messages: number;
  ratePerS: number;
  seed: number;
  drainTimeoutMs: number;
}

const REQUEST_TIMEOUT_S = 1;

function policyFor(fault: FaultKind, rng: Rng): FaultPolicy {
  let burstLeft = 0;
  const fiveXX = (): Decision => ({ kind: 'status', status: rng.pick([500, 502, 503, 504]) });
  const burst429 = (): Decision | undefined => {
    if (burstLeft === 0 && rng.chance(0.08)) burstLeft = rng.int(3, 8);
    if (burstLeft === 0) return undefined;
    burstLeft -= 1;
    return { kind: 'status', status: 429, headers: { 'retry-after': String(rng.pick([0, 1, 1, 2])) } };
  };
  const slow = (): Decision => ({ kind: 'ok', delayMs: rng.int(200, REQUEST_TIMEOUT_S * 1000 - 300) });
  return () => {
    switch (fault) {
      case '5xx':
        return rng.chance(0.3) ? fiveXX() : { kind: 'ok' };
      case 'reset':
        return rng.chance(0.25) ? { kind: 'reset' } : { kind: 'ok' };
      case 'hang':
        return rng.chance(0.15) ? { kind: 'hang' } : { kind: 'ok' };
      case 'slow':
        return rng.chance(0.5) ? slow() : { kind: 'ok' };
      case '429':
        return burst429() ?? { kind: 'ok' };
      case 'accept-reset':
        return rng.chance(0.2) ? { kind: 'accept-reset' } : { kind: 'ok' };
      case 'mix': {
        const b = burst429();
        if (b) return b;
        const x = rng.next();
        if (x < 0.3) return fiveXX();
        if (x < 0.36) return { kind: 'reset' };
        if (x < 0.4) return { kind: 'hang' };
        if (x < 0.45) return { kind: 'accept-reset' };
        if (x < 0.55) return slow();
        return { kind: 'ok' };
      }
    }
  };
}

const LABEL: Record<FaultKind, string> = {
  '5xx': '3 sink: 30% 5xx',
  reset: '3 sink: 25% connection resets',
  hang: `3 sink: 15% hang > ${REQUEST_TIMEOUT_S}s timeout`,
  slow: '3 sink: 50% slow answers',
  '429': '3 sink: 429 bursts + Retry-After',
  'accept-reset': '3 sink: 20% read, store, reset',
  mix: '3 sink: mix of all faults',
};

export async function sinkFaultScenario(p: SinkFaultParams): Promise<ScenarioResult> {
  const started = Date.now();
  const rng = new Rng(p.seed);
  const [nats, sink, spool] = await Promise.all([startNats(), startChaosSink(), tempDir('sink')]);
  sink.setPolicy(policyFor(p.fault, rng));
  const notes: string[] = [];
  const failures: string[] = [];
  const proc = startEmitter(
    chaosEnv({
      natsUrl: nats.url,
      sinkUrl: sink.url,
      spoolDir: spool.path,
      extra: {
        TRANSMITTER_BATCH_SIZE: '100',
        TRANSMITTER_BATCH_INTERVAL_S: '0.1',
        TRANSMITTER_REQUEST_TIMEOUT_S: String(REQUEST_TIMEOUT_S),
        TRANSMITTER_CONCURRENCY: '4',
        TRANSMITTER_RETRY_MAX_ATTEMPTS: '6',
        TRANSMITTER_RETRY_MAX_DELAY_S: '1',
        TRANSMITTER_CIRCUIT_FAILURE_THRESHOLD: '8',
        TRANSMITTER_CIRCUIT_RESET_TIMEOUT_S: '0.3',
      },
    }),
  );
  let pub: Publisher | undefined;
  try {
    await proc.running;
    pub = await Publisher.connect([nats.url]);
    await pub.publish(toRaw(sampleMessages(p.messages, `sink-${p.fault}-`)), {
      window: 100,
      ratePerS: p.ratePerS,
    });
    const ok = await drained(pub.published, sink, p.drainTimeoutMs);
    if (!ok) failures.push(`not everything delivered within ${p.drainTimeoutMs} ms`);
    await sleep(300);
    const code = await proc.stop();
    if (code !== 0) failures.push(`emitter exited ${code} on SIGTERM`);
    const errors = logMessages(proc.logs());
    if (errors.length > 0) notes.push(`logged errors: ${[...new Set(errors)].slice(0, 3).join('; ')}`);
    const t = tally(pub.published, sink.stored);
    notes.push(`sink answered: ${describeDecisions(sink.decisions)}`);
    if (t.duplicates > 0)
      notes.push(
        `duplicates: ${t.dupSameKey} same idempotency-key (answer lost after the receiver stored it), ${t.dupDiffKey} in two batches`,
      );
    if (sink.undecodable.length > 0)
      failures.push(`${sink.undecodable.length} request bodies did not decode`);
    return resultFrom(LABEL[p.fault], t, started, notes, failures);
  } finally {
    proc.kill('SIGKILL');
    await pub?.close();
    await Promise.all([nats.stop(), sink.close()]);
    await spool.remove();
  }
}
