import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmitter, type EmbeddedConfig, type Emitter } from '../../src/index.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { tempDir } from '../../harness/workload.js';
import { REPO } from '../fixtures/embed-support.js';

/**
 * The README's "Embedding" example, run as written: only its import line is dropped and
 * createEmitter is handed in, pointed at a loopback sink and a temp spool. It must define every
 * name it uses and finish well inside the default 30 s batch interval.
 */
function readmeExample(): string {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Embedding'));
  const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block?.includes('createEmitter(')) throw new Error('README: no createEmitter example under Embedding');
  return block.replace(/^import \{ createEmitter \} from 'batch-emitter';\n/m, '');
}

let sink: Sink;
beforeAll(async () => {
  sink = await startSink();
});
afterAll(async () => {
  await sink?.close();
});

describe('README embedding example', () => {
  it('runs as written, delivers its edge and node, and does not wait for the batch interval', async () => {
    const spool = await tempDir('readme-example');
    const made: Emitter[] = [];
    const redirected = (options: EmbeddedConfig) => {
      const emitter = createEmitter({
        ...options,
        destinationUrl: `${sink.url}/readme`,
        spoolDir: spool.path,
        allowInsecureHttp: true,
        logLevel: 'warn',
      });
      made.push(emitter);
      return emitter;
    };
    const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor as new (
      ...args: string[]
    ) => (...args: unknown[]) => Promise<void>;
    const started = performance.now();
    try {
      await new AsyncFunction('createEmitter', readmeExample())(redirected);
      expect(performance.now() - started).toBeLessThan(10_000);
      const bodies = sink.requests.map(
        (r) => r.body as { edges: Array<{ source: string }>; nodes_domain: Array<{ host: string }> },
      );
      expect(bodies.flatMap((b) => b.edges.map((e) => e.source))).toEqual(['a.example']);
      expect(bodies.flatMap((b) => b.nodes_domain.map((n) => n.host))).toEqual(['a.example']);
    } finally {
      for (const emitter of made) await emitter.close();
      await spool.remove();
    }
  }, 40_000);
});
