import { randomBytes } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startNats } from '../../harness/nats.js';
import type { SinkRequest } from '../../harness/sink.js';
import { deliveredKeys } from '../../harness/workload.js';
import { decodeBody } from '../../src/spool/batch-codec.js';
import { Spool } from '../../src/spool/spool.js';
import {
  chaosEnv,
  consumerState,
  drained,
  getJson,
  Publisher,
  resultFrom,
  sleep,
  startChaosSink,
  startEmitter,
  tally,
  tempDir,
  waitUntil,
  type RawPublished,
  type ScenarioResult,
} from './common.js';

/**
 * Scenario 7: a destination that refuses everything (400), under continuous publishing, with the
 * smallest spool limit (1 MiB). Dead letters take room in the spool like live batches, so:
 * the spool (dead letters included) stays near its limit, intake pauses (spool_full) and the rest
 * waits in the stream, /ready is 503 naming destination_rejecting. Nothing is lost: after
 * SIGTERM every published message is either dead-lettered, spooled or still in the stream; then
 * the dead letters are replayed and an accepting destination receives every message.
 */

export interface DeadLetterParams {
  messages: number;
  ratePerS: number;
  drainTimeoutMs: number;
}

const NAME = '7 destination refuses everything (400), 1 MiB spool';
const SPOOL_MAX_BYTES = 1_048_576;
const BATCH_SIZE = 200;

/** approved.finding events with ~1 KB of incompressible padding: the limit fills in seconds. */
function paddedMessages(count: number): RawPublished[] {
  const enc = new TextEncoder();
  return Array.from({ length: count }, (_, i) => {
    const id = `dl-${i}`;
    const data = { id, severity: 'low', pad: randomBytes(750).toString('base64') };
    return {
      subject: 'approved.finding',
      payload: enc.encode(JSON.stringify(data)),
      key: `v:${id}`,
      msgId: id,
    };
  });
}

function dirBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) total += statSync(join(dir, name)).size;
  return total;
}

/** Item keys of what the spool holds: its dead letters and its live batches. */
async function spooledKeys(dir: string): Promise<{ dead: Set<string>; live: Set<string> }> {
  const spool = await Spool.openExisting(dir);
  const keysOf = async (state: Parameters<typeof decodeBody>[0], body: Buffer) =>
    deliveredKeys([{ body: await decodeBody(state, body) } as unknown as SinkRequest]);
  try {
    const dead = new Set<string>();
    for (const letter of await spool.deadLetters.list()) {
      const found = await spool.deadLetters.get(letter.id);
      if (found?.letter.batch && found.body)
        for (const k of await keysOf(found.letter.batch, found.body)) dead.add(k);
    }
    const live = new Set<string>();
    for (const state of await spool.batches.list()) {
      const batch = await spool.batches.get(state.id);
      if (batch) for (const k of await keysOf(batch.state, batch.body)) live.add(k);
    }
    return { dead, live };
  } finally {
    await spool.close();
  }
}

async function replayAll(dir: string): Promise<number> {
  const spool = await Spool.openExisting(dir);
  try {
    let replayed = 0;
    for (const letter of await spool.deadLetters.list())
      if (await spool.deadLetters.replay(letter.id)) replayed += 1;
    return replayed;
  } finally {
    await spool.close();
  }
}

interface Stats {
  spool?: { usedBytes?: number; deadLetters?: number };
  intake?: { reason?: string | null };
  notReady?: string[];
}

export async function deadLetterScenario(p: DeadLetterParams): Promise<ScenarioResult> {
  const started = Date.now();
  const [nats, sink, spool] = await Promise.all([startNats(), startChaosSink(), tempDir('dead-letters')]);
  sink.setPolicy(() => ({ kind: 'status', status: 400 }));
  const notes: string[] = [];
  const failures: string[] = [];
  const env = (extra: Record<string, string>) =>
    chaosEnv({
      natsUrl: nats.url,
      sinkUrl: sink.url,
      spoolDir: spool.path,
      extra: { TRANSMITTER_BATCH_SIZE: String(BATCH_SIZE), TRANSMITTER_BATCH_INTERVAL_S: '0.1', ...extra },
    });
  let proc = startEmitter(env({ TRANSMITTER_SPOOL_MAX_BYTES: String(SPOOL_MAX_BYTES) }));
  let pub: Publisher | undefined;
  try {
    const http = await proc.running;
    pub = await Publisher.connect([nats.url]);
    const messages = paddedMessages(p.messages);
    let maxUsed = 0;
    let maxOnDisk = 0;
    let sawPaused = false;
    let sawRejecting = false;
    let ready503 = false;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const s = (await getJson(`${http}/api/v1/stats`).catch(() => undefined))?.body as Stats | undefined;
        maxUsed = Math.max(maxUsed, s?.spool?.usedBytes ?? 0);
        maxOnDisk = Math.max(maxOnDisk, dirBytes(spool.path));
        if (s?.intake?.reason === 'spool_full') sawPaused = true;
        if (s?.notReady?.includes('destination_rejecting')) sawRejecting = true;
        if ((await getJson(`${http}/ready`).catch(() => undefined))?.status === 503) ready503 = true;
        await sleep(200);
      }
    })();
    // publishing goes on while the emitter pauses: the rest must wait in the stream
    await pub.publish(messages, { window: 100, ratePerS: p.ratePerS });
    await waitUntil(
      () => sawPaused && sawRejecting,
      40_000,
      () => `intake paused (seen: ${sawPaused}) with the destination rejecting (seen: ${sawRejecting})`,
    ).catch((e: Error) => failures.push(e.message));
    await sleep(1000);
    sampling = false;
    await sampler;
    if (!ready503) failures.push('/ready never answered 503');
    // one batch may be sealed past the limit: the limit stops intake, not a batch in flight
    const slack = 2 * BATCH_SIZE * 1100;
    if (maxUsed > SPOOL_MAX_BYTES + slack)
      failures.push(`the spool grew to ${maxUsed} bytes, limit ${SPOOL_MAX_BYTES}`);
    notes.push(
      `spool used at most ${(maxUsed / 1048576).toFixed(2)} MiB (limit 1 MiB), ${(maxOnDisk / 1048576).toFixed(1)} MiB on disk`,
    );

    const code = await proc.stop();
    if (code !== 0) failures.push(`emitter exited ${code} on SIGTERM`);
    const state = await consumerState(pub.nc, 'APPROVED', 'chaos');
    const inStream = (state?.pending ?? 0) + (state?.ackPending ?? 0);
    const { dead, live } = await spooledKeys(spool.path);
    const accounted = dead.size + live.size + inStream;
    notes.push(`after SIGTERM: ${dead.size} dead-lettered, ${live.size} spooled, ${inStream} in the stream`);
    if (accounted !== pub.published.size)
      failures.push(
        `${pub.published.size} published but ${accounted} dead-lettered, spooled or in the stream`,
      );

    // the operator fixes the destination and replays the dead letters: all of it arrives
    const replayed = await replayAll(spool.path);
    sink.setPolicy(undefined);
    proc = startEmitter(env({}));
    await proc.running;
    const ok = await drained(pub.published, sink, p.drainTimeoutMs);
    if (!ok) failures.push(`not everything delivered within ${p.drainTimeoutMs} ms`);
    notes.push(`${replayed} dead letters replayed`);
    const code2 = await proc.stop();
    if (code2 !== 0) failures.push(`emitter exited ${code2} on SIGTERM after the replay`);
    return resultFrom(NAME, tally(pub.published, sink.stored), started, notes, failures);
  } finally {
    proc.kill('SIGKILL');
    await pub?.close();
    await Promise.all([nats.stop(), sink.close()]);
    await spool.remove();
  }
}
