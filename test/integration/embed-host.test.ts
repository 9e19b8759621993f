import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmitter } from '../../src/index.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { tempDir } from '../../harness/workload.js';
import { deliveredEvents, embedOptions, REPO, spawnTs } from '../fixtures/embed-support.js';

let sink: Sink;
beforeAll(async () => {
  sink = await startSink();
});
afterAll(async () => {
  await sink?.close();
});

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
