import { AckPolicy, DeliverPolicy, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect, nanos } from '@nats-io/transport-node';
import { parseAckSubject } from '../../src/ingress/delivery-facts.js';
import { startNats } from '../../harness/nats.js';
import { deliveredKeys, sampleMessages } from '../../harness/workload.js';
import {
  chaosEnv,
  consumerState,
  drained,
  getJson,
  logMessages,
  Publisher,
  resultFrom,
  sleep,
  startChaosSink,
  startEmitter,
  tally,
  tempDir,
  toRaw,
  type ScenarioResult,
} from './common.js';

/**
 * Issue 12, items 2 and 5: the JetStream stream or the durable consumer replaced under the
 * running emitter while publishing goes on (the publisher retries what fails while the stream is
 * missing).
 * stream-recreated: APPROVED deleted, then re-created at once with the durable, by an operator.
 * stream-deleted:   APPROVED deleted and left so: the emitter re-creates it (and the durable).
 * consumer-deleted: the durable deleted and left so: the emitter re-creates it.
 * Deleting a stream deletes the messages in it: a message published to the old stream that the
 * emitter had not acknowledged by then is gone by the operator's hand, counted apart (never as
 * lost). One the emitter had acknowledged (seen on the ack subjects) must be delivered.
 */

export type BrokerFault = 'stream-recreated' | 'stream-deleted' | 'consumer-deleted';

export interface BrokerReplacedParams {
  fault: BrokerFault;
  messages: number;
  ratePerS: number;
  drainTimeoutMs: number;
}

const NAMES: Record<BrokerFault, string> = {
  'stream-recreated': '12.2 stream deleted + re-created with the durable',
  'stream-deleted': '12.5 stream deleted (emitter re-creates it)',
  'consumer-deleted': '12.5 durable consumer deleted (emitter re-creates it)',
};

const LOG_LINE: Record<BrokerFault, RegExp> = {
  // whoever is first: the operator (the emitter then says the stream was re-created) or the emitter
  'stream-recreated': /^stream APPROVED was deleted/,
  'stream-deleted': /^stream APPROVED was deleted; re-creating it and durable consumer chaos$/,
  'consumer-deleted': /^durable consumer chaos on stream APPROVED was deleted; re-creating$/,
};

interface ReadyBody {
  failing?: string[];
}

/** Poll /ready until it is 200 again after a 503 naming consumer_bound, or the deadline. */
async function watchReady(
  http: string,
  deadlineMs: number,
): Promise<{ sawUnbound: boolean; backMs?: number }> {
  const started = Date.now();
  let sawUnbound = false;
  while (Date.now() - started < deadlineMs) {
    const r = await getJson(`${http}/ready`).catch(() => undefined);
    const failing = (r?.body as ReadyBody | undefined)?.failing ?? [];
    if (r?.status === 503 && failing.includes('consumer_bound')) sawUnbound = true;
    if (sawUnbound && r?.status === 200) return { sawUnbound, backMs: Date.now() - started };
    await sleep(25);
  }
  return { sawUnbound };
}

function logged(logs: string, pattern: RegExp): boolean {
  return logMessages(logs, 40).some((msg) => pattern.test(msg));
}

export async function brokerReplacedScenario(p: BrokerReplacedParams): Promise<ScenarioResult> {
  const started = Date.now();
  const [nats, sink, spool] = await Promise.all([startNats(), startChaosSink(), tempDir('broker')]);
  const notes: string[] = [];
  const failures: string[] = [];
  const proc = startEmitter(chaosEnv({ natsUrl: nats.url, sinkUrl: sink.url, spoolDir: spool.path }));
  const admin = await connect({ servers: nats.url });
  // the emitter's acks, by stream sequence, when first seen
  const emitterAcks = new Map<number, number>();
  admin.subscribe('$JS.ACK.APPROVED.chaos.>', {
    callback: (_err, msg) => {
      const delivery = parseAckSubject(msg.subject);
      if (delivery && msg.string() === '+ACK' && !emitterAcks.has(delivery.seq))
        emitterAcks.set(delivery.seq, Date.now());
    },
  });
  let pub: Publisher | undefined;
  try {
    const http = await proc.running;
    pub = await Publisher.connect([nats.url]);
    const publishing = pub.publish(toRaw(sampleMessages(p.messages, p.fault)), {
      window: 50,
      ratePerS: p.ratePerS,
      deadlineMs: 120_000,
    });
    await sleep((p.messages / p.ratePerS) * 1000 * 0.4);

    const jsm = await jetstreamManager(admin);
    const ready = watchReady(http, 20_000);
    const faultAt = Date.now();
    if (p.fault === 'consumer-deleted') {
      await jsm.consumers.delete('APPROVED', 'chaos');
    } else {
      await jsm.streams.delete('APPROVED');
      if (p.fault === 'stream-recreated') {
        await jsm.streams.add({ name: 'APPROVED', subjects: ['approved.>'], storage: StorageType.File });
        await jsm.consumers.add('APPROVED', {
          durable_name: 'chaos',
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DeliverPolicy.All,
          ack_wait: nanos(3000),
        });
      }
    }
    const faultDone = Date.now();
    notes.push(`${p.fault} at ${((faultAt - started) / 1000).toFixed(1)} s, under load`);

    // messages of the deleted stream the emitter had not acknowledged went with it
    const atRisk = new Set<string>();
    if (p.fault !== 'consumer-deleted') {
      for (const [key, { seq, atMs }] of pub.acks) {
        const ackedAt = emitterAcks.get(seq);
        if (atMs <= faultDone && (ackedAt === undefined || ackedAt > faultDone)) atRisk.add(key);
      }
    }

    const seen = await ready;
    if (!seen.sawUnbound) failures.push('/ready never said consumer_bound failing');
    else notes.push(`/ready 503 (consumer_bound) then 200 after ${((seen.backMs ?? 0) / 1000).toFixed(1)} s`);
    if (!logged(proc.logs(), LOG_LINE[p.fault]))
      failures.push(`no log line matching ${String(LOG_LINE[p.fault])}`);

    await publishing;
    const ok = await drained(pub.published, sink, p.drainTimeoutMs, atRisk);
    if (!ok) {
      failures.push(`not everything delivered within ${p.drainTimeoutMs} ms`);
      notes.push(
        `consumer at the deadline: ${JSON.stringify(await consumerState(admin, 'APPROVED', 'chaos'))}`,
      );
    }
    await sleep(300);
    const code = await proc.stop();
    if (code !== 0) failures.push(`emitter exited ${code} on SIGTERM`);
    const errors = logMessages(proc.logs());
    if (errors.length > 0) notes.push(`logged errors: ${[...new Set(errors)].slice(0, 3).join('; ')}`);

    const stored = new Set(deliveredKeys(sink.stored));
    const destroyed = [...atRisk].filter((key) => !stored.has(key));
    if (destroyed.length > 0)
      notes.push(
        `${destroyed.length} published to the old stream, deleted with it before the emitter took them (not counted)`,
      );
    if (pub.failed.size > 0) notes.push(`${pub.failed.size} publishes never acknowledged (not counted)`);
    notes.push(`publisher retried ${pub.retries} publishes`);
    const gone = new Set(destroyed);
    const t = tally(
      [...pub.published].filter((key) => !gone.has(key)),
      sink.stored,
    );
    return resultFrom(NAMES[p.fault], t, started, notes, failures);
  } finally {
    proc.kill('SIGKILL');
    await pub?.close();
    await admin.close().catch(() => undefined);
    await Promise.all([nats.stop(), sink.close()]);
    await spool.remove();
  }
}
