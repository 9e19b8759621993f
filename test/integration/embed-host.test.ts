import { cp, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmitter } from '../../src/index.js';
import { waitForAckPending } from '../../harness/consumer.js';
import { startNats, type NatsServerHandle } from '../../harness/nats.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { allDelivered, publishAll, sampleMessages, tempDir } from '../../harness/workload.js';
import { deliveredEvents, embedOptions, REPO, spawnTs } from '../fixtures/embed-support.js';

let sink: Sink;
let nats: NatsServerHandle;
let checkout: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  [sink, nats, checkout] = await Promise.all([startSink(), startNats(), sourceCheckout()]);
});
afterAll(async () => {
  await Promise.all([sink?.close(), nats?.stop(), checkout?.remove()]);
});

/** The sources as a fresh clone has them, without dist/ (node_modules linked). */
async function sourceCheckout() {
  const dir = await tempDir('host-checkout');
  for (const part of ['package.json', 'tsconfig.json', 'src', 'machines', 'plugins'])
    await cp(join(REPO, part), join(dir.path, part), { recursive: true });
  await symlink(join(REPO, 'node_modules'), join(dir.path, 'node_modules'));
  return dir;
}

/** How the README configures the host: the plugin named by its package specifier. */
async function writeHostConfig(dir: string, config: Record<string, unknown>): Promise<string> {
  const path = join(dir, 'host.json');
  await writeFile(
    path,
    JSON.stringify({ plugins: [{ module: 'batch-emitter/plugin', config }], shutdownDeadlineS: 10 }),
  );
  return path;
}

describe('reference host (plugins/host.ts)', () => {
  it('loads the plugin from its JSON config, replays its spool, and on SIGTERM closes and exits 0', async () => {
    const dir = await tempDir('embed-host');
    try {
      const options = embedOptions(`${sink.url}/ingest`, join(dir.path, 'spool'), { shutdownTimeoutS: 0.3 });
      // leave one batch in the spool: delivered with the sink down, it stays there
      await sink.down();
      const before = createEmitter(options);
      await before.start();
      await before.add('host.replay', { id: 'replayed' });
      await before.close();
      await sink.up();

      const configPath = join(dir.path, 'host.json');
      await writeFile(
        configPath,
        JSON.stringify({
          plugins: [{ module: join(REPO, 'plugins/plugin.ts'), config: options }],
          shutdownDeadlineS: 5,
        }),
      );
      const host = spawnTs('plugins/host.ts', {}, [configPath]);
      await host.saw('"msg":"running"');
      await sink.waitFor((rs) => deliveredEvents(rs).length === 1, 10_000);
      expect(deliveredEvents(sink.requests)[0]?.data.id).toBe('replayed');
      host.child.kill('SIGTERM');
      expect(await host.exited, host.output()).toBe(0);
      expect(host.output()).toMatch(/"clean":true,"msg":"stopped"/);
    } finally {
      await dir.remove();
      await sink.up();
      sink.clear();
    }
  });

  it('from a checkout without dist/, runs until SIGTERM (well after its spool is delivered), then stops cleanly, exit 0', async () => {
    const dir = await tempDir('embed-host-idle');
    try {
      const options = embedOptions(`${sink.url}/idle`, join(dir.path, 'spool'));
      // something to deliver through the host: a batch left in its spool by an earlier run
      await sink.down();
      const before = createEmitter({ ...options, shutdownTimeoutS: 0.3 });
      await before.start();
      await before.add('host.replay', { id: 'left-behind' });
      await before.close();
      await sink.up();

      const host = spawnTs(join(checkout.path, 'plugins/host.ts'), {}, [
        await writeHostConfig(dir.path, options),
      ]);
      await host.saw('"msg":"running"');
      await sink.waitFor((rs) => deliveredEvents(rs).some((e) => e.data.id === 'left-behind'), 10_000);
      // idle now, with no NATS: it used to exit by itself 0.4 s after "running"
      const idle = await Promise.race([
        host.exited.then((code) => `exited ${code}`),
        new Promise((r) => setTimeout(() => r('still running'), 3000)),
      ]);
      expect(idle, host.output()).toBe('still running');
      host.child.kill('SIGTERM');
      expect(await host.exited, host.output()).toBe(0);
      expect(host.output()).toMatch(/"why":"SIGTERM","msg":"stopping plugins"/);
      expect(host.output()).toMatch(/"clean":true,"msg":"stopped"/);
    } finally {
      await dir.remove();
      await sink.up();
      sink.clear();
    }
  });

  it('on SIGTERM flushes the open batch, delivers every event it took in, closes within its deadline, exit 0', async () => {
    const dir = await tempDir('embed-host-flush');
    try {
      const durable = 'host-flush';
      const options = embedOptions(`${sink.url}/flush`, join(dir.path, 'spool'), {
        natsUrl: nats.url,
        natsDurable: durable,
        batchIntervalS: 600, // nothing is sealed before the stop
      });
      const host = spawnTs(join(checkout.path, 'plugins/host.ts'), {}, [
        await writeHostConfig(dir.path, options),
      ]);
      await host.saw('"msg":"running"');
      const messages = sampleMessages(30, 'host');
      await publishAll(nats.url, messages);
      await waitForAckPending(nats.url, durable, messages.length);
      expect(sink.requests).toHaveLength(0);

      const signalledAt = performance.now();
      host.child.kill('SIGTERM');
      expect(await host.exited, host.output()).toBe(0);
      expect(performance.now() - signalledAt).toBeLessThan(10_000);
      expect(allDelivered(messages)(sink.requests)).toBe(true);
      expect(host.output()).toMatch(/"clean":true,"msg":"stopped"/);
    } finally {
      await dir.remove();
      sink.clear();
    }
  });

  it('refuses a bad plugin config with a message naming the option, exit 1', async () => {
    const dir = await tempDir('embed-host-bad');
    try {
      const configPath = join(dir.path, 'host.json');
      await writeFile(
        configPath,
        JSON.stringify({
          plugins: [
            { module: join(REPO, 'plugins/plugin.ts'), config: { destinationUrl: 'https://x.test' } },
          ],
        }),
      );
      const host = spawnTs('plugins/host.ts', {}, [configPath]);
      expect(await host.exited).toBe(1);
      expect(host.output()).toMatch(/config: spoolDir: /);
    } finally {
      await dir.remove();
    }
  });
});
