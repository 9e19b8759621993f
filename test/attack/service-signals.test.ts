import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { atProcessEnd } from '../../harness/cleanup.js';
import { waitForAckPending } from '../../harness/consumer.js';
import { startNats, type NatsServerHandle } from '../../harness/nats.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { allDelivered, publishAll, sampleMessages, tempDir } from '../../harness/workload.js';
import { REPO } from '../fixtures/embed-support.js';
import { testEnv } from '../support/env.js';

/**
 * Attack on `npm start` = `exec node --import tsx src/bin.ts run` (f-svc): signals other than one
 * SIGTERM, sent to the npm pid as a supervisor or a user would. After each: no process left
 * holding the spool, and every event JetStream gave the emitter is delivered in the end (the ones
 * it acked from the spool, the others by redelivery). Real nats-server, real sink, real spool.
 */

const MARK = 'BATCH_EMITTER_ATTACK_MARK';

let nats: NatsServerHandle;
let sink: Sink;
let work: Awaited<ReturnType<typeof tempDir>>;
let publishedSoFar = 0;

beforeAll(async () => {
  work = await tempDir('attack-svc');
  [nats, sink] = await Promise.all([startNats(), startSink()]);
}, 60_000);
afterAll(async () => {
  await Promise.all([nats?.stop(), sink?.close()]);
  await work?.remove();
});

interface Service {
  readonly child: ChildProcess;
  readonly mark: string;
  output(): string;
  saw(text: string, timeoutMs?: number): Promise<void>;
  exited: Promise<number | string>;
}

const started = new Set<string>();
atProcessEnd(() => {
  for (const mark of started)
    for (const p of processesMarked(mark)) {
      try {
        process.kill(Number.parseInt(p, 10), 'SIGKILL');
      } catch {
        // gone
      }
    }
});

function npmStart(env: Record<string, string>): Service {
  const mark = randomUUID();
  started.add(mark);
  const child = spawn('npm', ['start'], {
    cwd: REPO,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env, [MARK]: mark },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    out += chunk.toString();
    for (const w of waiters) w();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  const saw = (text: string, timeoutMs = 60_000) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!out.includes(text)) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no "${text}" within ${timeoutMs} ms:\n${out}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  return { child, mark, output: () => out, saw, exited };
}

function processesMarked(mark: string): string[] {
  const needle = `${MARK}=${mark}`;
  const read = (pid: string, file: string) => {
    try {
      return readFileSync(`/proc/${pid}/${file}`, 'latin1');
    } catch {
      return '';
    }
  };
  return readdirSync('/proc')
    .filter((pid) => /^\d+$/.test(pid) && read(pid, 'environ').split('\0').includes(needle))
    .map((pid) => `${pid} ${read(pid, 'cmdline').replaceAll('\0', ' ').trim()}`);
}

function serviceEnv(spool: string, durable: string): Record<string, string> {
  return testEnv({
    natsUrl: nats.url,
    sinkUrl: sink.url,
    spoolDir: spool,
    extra: {
      TRANSMITTER_NATS_DURABLE: durable,
      TRANSMITTER_BATCH_INTERVAL_S: '600',
      TRANSMITTER_BATCH_SIZE: '10000',
      TRANSMITTER_SHUTDOWN_TIMEOUT_S: '10',
      TRANSMITTER_LOG_LEVEL: 'info',
    },
  });
}

/** Start, publish 40, wait until the emitter holds them all (ack pending). */
async function holding40(spool: string, durable: string, extra: Record<string, string> = {}) {
  const env = { ...serviceEnv(spool, durable), ...extra };
  const messages = sampleMessages(40, durable);
  const service = npmStart(env);
  await service.saw('"msg":"running"');
  await publishAll(nats.url, messages);
  publishedSoFar += messages.length;
  await waitForAckPending(nats.url, durable, publishedSoFar);
  return { env, messages, service };
}

/** A second start on the same spool (and durable) delivers whatever is left; then stops cleanly. */
async function restartDelivers(env: Record<string, string>, messages: ReturnType<typeof sampleMessages>) {
  const again = npmStart(env);
  try {
    await again.saw('"msg":"running"');
    await sink.waitFor(allDelivered(messages), 60_000);
  } finally {
    again.child.kill('SIGTERM');
    expect(await again.exited, again.output()).toBe(0);
    expect(processesMarked(again.mark)).toEqual([]);
  }
}

describe('attack: signals to npm start', () => {
  // Regression (passes): SIGINT to the npm pid is forwarded like SIGTERM: drain, exit 0.
  it('SIGINT to the npm pid: drains, exits 0, leaves no process', async () => {
    const spool = join(work.path, `spool-${randomUUID()}`);
    const durable = `int${randomUUID().slice(0, 8)}`;
    const { messages, service } = await holding40(spool, durable);
    try {
      service.child.kill('SIGINT');
      expect(await service.exited, service.output()).toBe(0);
      expect(allDelivered(messages)(sink.requests), service.output()).toBe(true);
      expect(processesMarked(service.mark)).toEqual([]);
    } finally {
      service.child.kill('SIGKILL');
      sink.clear();
    }
  }, 120_000);

  // Regression (passes): a second SIGTERM while the drain waits on a destination that hangs: the
  // emitter stops waiting, exits, leaves nothing running; what it acked is in the spool and a next
  // start delivers every event.
  it('second SIGTERM while draining against a hanging destination: no orphan, nothing acked is lost', async () => {
    const spool = join(work.path, `spool-${randomUUID()}`);
    const durable = `two${randomUUID().slice(0, 8)}`;
    sink.respondWith(() => 'hang');
    const { env, messages, service } = await holding40(spool, durable);
    try {
      service.child.kill('SIGTERM');
      await service.saw('batch sealed');
      service.child.kill('SIGTERM');
      const code = await service.exited;
      expect(processesMarked(service.mark), service.output()).toEqual([]);
      expect(typeof code, service.output()).toBe('number');
      sink.respondWith(undefined);
      await restartDelivers(env, messages);
    } finally {
      sink.respondWith(undefined);
      service.child.kill('SIGKILL');
      sink.clear();
    }
  }, 180_000);

  // SIGKILL to npm re-parents the emitter; it notices npm gone and stops as on SIGTERM. Attacked
  // while the sink hangs, so that the drain lasts the whole shutdown timeout: a second start in that
  // window is refused (one owner of the spool), the orphan then exits by itself, nothing is lost.
  it('SIGKILL to the npm pid while the sink hangs: the orphan drains and exits by itself; a start meanwhile is refused, not doubled', async () => {
    const spool = join(work.path, `spool-${randomUUID()}`);
    const durable = `kil${randomUUID().slice(0, 8)}`;
    sink.respondWith(() => 'hang');
    // a drain long enough for the second start to come up inside it, even on a loaded machine
    const { env, messages, service } = await holding40(spool, durable, {
      TRANSMITTER_SHUTDOWN_TIMEOUT_S: '30',
    });
    try {
      service.child.kill('SIGKILL');
      await service.exited;
      expect(processesMarked(service.mark).length).toBeGreaterThan(0);
      await service.saw('the npm process that started the emitter is gone');
      await service.saw('batch sealed');
      const second = npmStart(env);
      expect(await second.exited).not.toBe(0);
      expect(second.output()).toMatch(/SPOOL_LOCKED|locked|held by another process/i);
      // no signal from here on: the orphan ends within the shutdown timeout (30 s) plus a margin
      const until = Date.now() + 60_000;
      while (processesMarked(service.mark).length > 0 && Date.now() < until)
        await new Promise((r) => setTimeout(r, 100));
      expect(processesMarked(service.mark), service.output()).toEqual([]);
      expect(service.output()).toContain('"msg":"closed"');
      sink.respondWith(undefined);
      await restartDelivers(env, messages);
    } finally {
      sink.respondWith(undefined);
      for (const p of processesMarked(service.mark)) process.kill(Number.parseInt(p, 10), 'SIGKILL');
      sink.clear();
    }
  }, 180_000);
});
