/** Part 1a, the raw limit of JetStream: consume + explicit ack (optionally JSON.parse) in this process. */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, nanos } from '@nats-io/transport-node';
import { progress, say } from './context.js';
import { S } from './settings.js';

export interface RawResult {
  eventsPerS: number;
  seconds: number;
  cpuSPerM: number;
}

export async function rawConsume(
  natsUrl: string,
  stream: string,
  durable: string,
  n: number,
  parse: boolean,
): Promise<RawResult> {
  const nc = await connect({ servers: natsUrl, name: `bench-${durable}` });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.consumers.add(stream, {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(60_000),
      max_ack_pending: Math.max(2 * S.batchSize, 1000), // as the emitter's consumer
    });
    const consumer = await jetstream(nc).consumers.get(stream, durable);
    const messages = await consumer.consume({ max_messages: Math.min(1000, S.batchSize) });
    const utf8 = new TextDecoder('utf-8', { fatal: true });
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let k = 0;
    let sink = 0;
    const label = parse ? 'raw+parse' : 'raw ack';
    for await (const m of messages) {
      if (parse) sink += (JSON.parse(utf8.decode(m.data)) as { i: number }).i;
      m.ack();
      if (++k % 5000 === 0) progress.set({ label: label, done: k, total: n, unit: 'msgs' });
      if (k >= n) break;
    }
    await nc.flush();
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    await messages.close();
    if (sink < 0) say('impossible'); // keep the parse from being optimised away
    return { eventsPerS: n / seconds, seconds, cpuSPerM: ((cpu.user + cpu.system) / 1e6 / n) * 1e6 };
  } finally {
    await nc.close();
  }
}
