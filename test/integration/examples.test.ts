import { access, cp, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNats, type NatsServerHandle } from '../../harness/nats.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { allDelivered, publishAll, sampleMessages } from '../../harness/workload.js';
import { deliveredEvents, REPO, spawnNode } from '../fixtures/embed-support.js';
import { packIntoFreshProject, runNode, type PackedProject } from '../fixtures/packed-project.js';

/**
 * Every file of examples/ (the README quotes them) run with plain node in a fresh `npm init -y`
 * project where the packed tarball is installed, against a loopback sink: the sink must receive
 * every item each example sends.
 */

const EXAMPLES = join(REPO, 'examples');

interface WireBatch {
  nodes_domain: Array<{ host: string }>;
  edges: Array<{ type: string; source: string; target: string }>;
}

let sink: Sink;
let packed: PackedProject;
beforeAll(async () => {
  sink = await startSink();
  packed = await packIntoFreshProject('examples', ['pino', 'xstate']);
  for (const file of await readdir(EXAMPLES)) await cp(join(EXAMPLES, file), join(packed.project, file));
}, 240_000);
afterAll(async () => {
  await sink?.close();
  await packed?.remove();
});

/** The example's environment: its own path on the sink, its own spool. */
const envFor = (name: string) => ({
  DESTINATION_URL: `${sink.url}/${name}`,
  SPOOL_DIR: join(packed.scratch, `spool-${name}`),
  ALLOW_INSECURE_HTTP: 'true',
});
const requestsAt = (name: string) => sink.requests.filter((r) => r.url === `/${name}`);
const eventsAt = (name: string) => deliveredEvents(requestsAt(name));

describe('examples/, run from the packed package', () => {
  it('runs in a CommonJS project as npm init makes it (the examples are .mjs, or .cjs with import())', async () => {
    const manifest = JSON.parse(await readFile(join(packed.project, 'package.json'), 'utf8')) as {
      type?: string;
    };
    expect(manifest.type ?? 'commonjs').toBe('commonjs');
  });

  it('create-emitter.mjs delivers its node, edge and 100 events without waiting for the batch interval', async () => {
    const { stdout, ms } = await runNode(packed.project, ['create-emitter.mjs'], envFor('create-emitter'));
    expect(stdout).toContain('102 items delivered');
    // awaiting each add in turn would wait out the 30 s default batch interval at least once
    expect(ms).toBeLessThan(25_000);
    const bodies = requestsAt('create-emitter').map((r) => r.body as WireBatch);
    expect(bodies.flatMap((b) => b.nodes_domain.map((n) => n.host))).toEqual(['a.example']);
    expect(bodies.flatMap((b) => b.edges)).toMatchObject([
      { type: 'RESOLVES_TO', source: 'a.example', target: '192.0.2.1' },
    ]);
    const orders = eventsAt('create-emitter').map((e) => {
      expect(e.subject).toBe('shop.order');
      return e.data.order;
    });
    expect(orders.sort((a, b) => Number(a) - Number(b))).toEqual(
      Array.from({ length: 100 }, (_, i) => i + 1),
    );
  });

  it('commonjs-host.cjs loads the ESM-only package with import() and delivers its events', async () => {
    const { stdout } = await runNode(packed.project, ['commonjs-host.cjs'], envFor('commonjs-host'));
    expect(stdout).toContain('3 items delivered');
    expect(eventsAt('commonjs-host').map((e) => [e.subject, e.data.step])).toEqual([
      ['job.step', 'started'],
      ['job.step', 'working'],
      ['job.step', 'finished'],
    ]);
    // Node >= 20.19 also loads it with require() (the package has no top-level await)
    const required = await runNode(
      packed.project,
      ['-e', "console.log(typeof require('batch-emitter').createEmitter)"],
      {},
    );
    expect(required.stdout.trim()).toBe('function');
  });

  it('pino-transport.mjs delivers every log line as log.<level> when the process exits', async () => {
    await runNode(packed.project, ['pino-transport.mjs'], envFor('pino-transport'));
    expect(eventsAt('pino-transport').map((e) => [e.subject, e.data.msg])).toEqual([
      ['log.info', 'order placed'],
      ['log.warn', 'payment slow'],
      ['log.error', 'payment refused'],
    ]);
  });

  it('xstate-actor.mjs delivers what the machine sent before the program ends', async () => {
    const { stdout, stderr } = await runNode(packed.project, ['xstate-actor.mjs'], envFor('xstate-actor'));
    expect(stdout).toContain('probe done');
    expect(stderr).toBe('');
    expect(eventsAt('xstate-actor').map((e) => [e.subject, e.data.host])).toEqual([
      ['probe.found', 'a.example'],
      ['probe.found', 'b.example'],
      ['probe.found', 'c.example'],
    ]);
  });
});

describe('examples/plugin-host.json, run by the packed reference host', () => {
  let nats: NatsServerHandle;
  beforeAll(async () => {
    nats = await startNats();
  });
  afterAll(async () => {
    await nats?.stop();
  });

  /** Resolves once the durable holds `count` messages delivered to the emitter and not yet acked. */
  async function allPulled(count: number, timeoutMs = 30_000): Promise<void> {
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const info = await jsm.consumers.info('APPROVED', 'transmitter');
        if (info.num_pending === 0 && info.num_ack_pending === count) return;
        if (Date.now() > deadline) throw new Error(`consumer: ${JSON.stringify(info)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await nc.close();
    }
  }

  it('consumes approved.* and, on SIGTERM, flushes, delivers everything and exits 0', async () => {
    const example = JSON.parse(await readFile(join(EXAMPLES, 'plugin-host.json'), 'utf8')) as {
      plugins: Array<{ module: string; config: Record<string, unknown> }>;
    };
    expect(example.plugins.map((p) => p.module)).toEqual(['batch-emitter/plugin']);
    // the example as written, pointed at this test's NATS server, sink and spool
    const { SPOOL_DIR, DESTINATION_URL } = envFor('plugin-host');
    const config = {
      ...example,
      plugins: [
        {
          ...example.plugins[0]!,
          config: {
            ...example.plugins[0]!.config,
            natsUrl: nats.url,
            destinationUrl: DESTINATION_URL,
            spoolDir: SPOOL_DIR,
            allowInsecureHttp: true,
          },
        },
      ],
    };
    expect(Object.keys(config.plugins[0]!.config).sort()).toEqual(
      [...Object.keys(example.plugins[0]!.config), 'allowInsecureHttp'].sort(),
    );
    await writeFile(join(packed.scratch, 'plugin-host.json'), JSON.stringify(config));

    const host = spawnNode(
      packed.project,
      ['node_modules/batch-emitter/dist/plugins/host.js', join(packed.scratch, 'plugin-host.json')],
      {},
    );
    try {
      await host.saw('"msg":"running"');
      const messages = sampleMessages(50, 'host');
      await publishAll(nats.url, messages);
      // all in the open batch (sealed only after the 30 s default interval, or at the stop)
      await allPulled(messages.length);
      expect(requestsAt('plugin-host')).toEqual([]);
      host.child.kill('SIGTERM');
      expect(await host.exited, host.output()).toBe(0);
      expect(allDelivered(messages)(requestsAt('plugin-host'))).toBe(true);
    } finally {
      host.child.kill('SIGKILL');
    }
  });
});

/** Each source a .js.map of the package names that neither exists in the package nor is embedded. */
async function unresolvedSources(pkg: string, maps: string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const map of maps) {
    const {
      sources,
      sourcesContent = [],
      sourceRoot = '',
    } = JSON.parse(await readFile(join(pkg, map), 'utf8')) as {
      sources: string[];
      sourcesContent?: Array<string | null>;
      sourceRoot?: string;
    };
    for (const [i, source] of sources.entries()) {
      if (typeof sourcesContent[i] === 'string' && sourcesContent[i].length > 0) continue;
      const path = resolve(pkg, dirname(map), sourceRoot, source);
      const inside = !relative(pkg, path).startsWith('..');
      const exists = await access(path).then(
        () => true,
        () => false,
      );
      if (!inside || !exists) missing.push(`${map}: ${source}`);
    }
  }
  return missing;
}

describe('the packed package', () => {
  it('every .js.map names sources that are in the package or embedded in the map', async () => {
    const maps = packed.files.filter((f) => f.endsWith('.js.map'));
    expect(maps).toEqual(expect.arrayContaining(['dist/src/index.js.map', 'dist/plugins/pino.js.map']));
    const installed = join(packed.project, 'node_modules/batch-emitter');
    expect(await unresolvedSources(installed, maps)).toEqual([]);
  });
});
