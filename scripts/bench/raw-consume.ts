/**
 * Part 1a, the bare consumers the emitter is measured against: JetStream consume in this process,
 * each message decoded and parsed (as the emitter does), acknowledged in one of three ways:
 *   - `each`:   an explicit ack of every message on arrival
 *   - `batch`:  explicit acks of `S.batchSize` messages together (the emitter's pattern: a batch's
 *               messages are acked at once when it is durable)
 *   - `ackall`: AckPolicy.All, one ack per `S.batchSize` messages (acks everything up to it)
 * The consumer has the emitter's max_ack_pending and ack_wait. CPU is this process's (all threads),
 * and the nats-server's from /proc when its pid is given.
 */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import { connect, nanos } from '@nats-io/transport-node';
import { consumerSettings } from '../../src/ingress/jetstream-resources.js';
import { progress, say } from './context.js';
import { cpuSeconds } from './proc.js';
import { S } from './settings.js';

export type AckMode = 'each' | 'batch' | 'ackall';

export const ACK_MODE_LABEL: Readonly<Record<AckMode, string>> = {
  each: 'explicit ack of each message on arrival',
  batch: `explicit acks of ${S.batchSize.toLocaleString('en-US')} messages together`,
  ackall: `AckAll, one ack per ${S.batchSize.toLocaleString('en-US')}`,
};

export interface RawResult {
  mode: AckMode;
  eventsPerS: number;
  seconds: number;
  /** client CPU s per 1M events (all its threads) */
  cpuSPerM: number;
  /** the nats-server's CPU s per 1M events over the same span (NaN when not measured) */
  serverCpuSPerM: number;
}

export async function rawConsume(
  natsUrl: string,
  stream: string,
  durable: string,
  n: number,
  mode: AckMode,
  serverPid?: number,
): Promise<RawResult> {
  const nc = await connect({ servers: natsUrl, name: `bench-${durable}` });
  try {
    const jsm = await jetstreamManager(nc);
    const { ackWaitMs, maxAckPending } = consumerSettings(S.batchSize, S.intervalS * 1000);
    await jsm.consumers.add(stream, {
      durable_name: durable,
      ack_policy: mode === 'ackall' ? AckPolicy.All : AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(ackWaitMs),
      max_ack_pending: maxAckPending,
    });
    const consumer = await jetstream(nc).consumers.get(stream, durable);
    const messages = await consumer.consume({ max_messages: Math.min(1000, S.batchSize) });
    const utf8 = new TextDecoder('utf-8', { fatal: true });
    const server0 = serverPid === undefined ? NaN : (cpuSeconds(serverPid) ?? NaN);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let k = 0;
    let sink = 0;
    let held: JsMsg[] = [];
    for await (const m of messages) {
      sink += (JSON.parse(utf8.decode(m.data)) as { i: number }).i;
      k += 1;
      if (mode === 'each') m.ack();
      else if (mode === 'ackall') {
        if (k % S.batchSize === 0 || k >= n) m.ack();
      } else {
        held.push(m);
        if (held.length >= S.batchSize || k >= n) {
          for (const h of held) h.ack();
          held = [];
        }
      }
      if (k % 5000 === 0) progress.set({ label: `raw ${mode}`, done: k, total: n, unit: 'msgs' });
      if (k >= n) break;
    }
    await nc.flush();
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const server1 = serverPid === undefined ? NaN : (cpuSeconds(serverPid) ?? NaN);
    await messages.close();
    if (sink < 0) say('impossible'); // keep the parse from being optimised away
    return {
      mode,
      eventsPerS: n / seconds,
      seconds,
      cpuSPerM: ((cpu.user + cpu.system) / 1e6 / n) * 1e6,
      serverCpuSPerM: ((server1 - server0) / n) * 1e6,
    };
  } finally {
    await nc.close();
  }
}

/** The three bare consumers, one after another on the same pre-published messages. */
export async function rawConsumers(
  natsUrl: string,
  stream: string,
  n: number,
  serverPid?: number,
): Promise<Record<AckMode, RawResult>> {
  const each = await rawConsume(natsUrl, stream, 'raw_each', n, 'each', serverPid);
  const batch = await rawConsume(natsUrl, stream, 'raw_batch', n, 'batch', serverPid);
  const ackall = await rawConsume(natsUrl, stream, 'raw_ackall', n, 'ackall', serverPid);
  return { each, batch, ackall };
}
