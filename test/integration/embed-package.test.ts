import { execFile } from 'node:child_process';
import { cp, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSink, type Sink } from '../../harness/sink.js';
import { installInto, packInto } from '../../harness/packed-package.js';
import { tempDir } from '../../harness/workload.js';
import { deliveredEvents, REPO } from '../fixtures/embed-support.js';

const run = promisify(execFile);

let sink: Sink;
beforeAll(async () => {
  sink = await startSink();
});
afterAll(async () => {
  await sink?.close();
});

describe('the packed package', () => {
  it('installs into a fresh project and every entry point works with plain node (no tsx)', async () => {
    const dir = await tempDir('embed-package');
    try {
      // `npm pack` runs the prepack script, i.e. `npm run build`
      const { tarball, files: paths } = await packInto(dir.path);
      expect(paths).toEqual(
        expect.arrayContaining([
          'package.json',
          'README.md',
          'nats.conf',
          'dist/src/index.js',
          'dist/src/index.d.ts',
          'dist/plugins/pino.js',
          'dist/plugins/xstate.js',
          'dist/plugins/plugin.js',
          'dist/plugins/host.js',
          // the /debug page's script and stylesheet, static files beside their module
          'dist/src/observe/views/assets/debug-app.js',
          'dist/src/observe/views/assets/debug-app.css',
        ]),
      );
      expect(paths.filter((p) => p.startsWith('test/') || p.startsWith('src/'))).toEqual([]);

      const project = join(dir.path, 'project');
      await installInto(project, tarball);
      await cp(join(REPO, 'test/fixtures/embed-package-smoke.mjs'), join(project, 'smoke.mjs'));
      expect(await readdir(join(project, 'node_modules/batch-emitter/dist/src'))).toContain('index.js');

      const smoke = await run(process.execPath, ['smoke.mjs'], {
        cwd: project,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '/tmp',
          SINK_URL: sink.url,
          SPOOL_ROOT: dir.path,
        },
        timeout: 60_000,
      });
      expect(smoke.stdout).toContain('smoke done');
      expect(smoke.stdout).toContain('closed true');
      const exported = JSON.parse(/exports (.*)/.exec(smoke.stdout)![1]!) as {
        main: string[];
        pino: string;
        xstate: string[];
        plugin: { name: string; version: string };
      };
      expect(exported.main).toEqual(
        expect.arrayContaining([
          'ConfigError',
          'EDGE_TYPES',
          'Emitter',
          'EmitterNotStartedError',
          'IntakeClosedError',
          'InvalidItemError',
          'createEmitter',
          'loadConfig',
        ]),
      );
      expect(exported.pino).toBe('function');
      expect(exported.xstate).toEqual(expect.arrayContaining(['emitterLogic', 'emittersClosed']));
      expect(exported.plugin.name).toBe('batch-emitter');

      const byPath = (p: string) =>
        deliveredEvents(sink.requests.filter((r) => r.url === p)).map((e) => e.data.id);
      expect(byPath('/api')).toEqual(['api']);
      const apiEdges = sink.requests
        .filter((r) => r.url === '/api')
        .flatMap((r) => (r.body as { edges: Array<{ type: string }> }).edges);
      expect(apiEdges).toMatchObject([{ type: 'LINKS_TO' }]);
      expect(byPath('/plugin')).toEqual(['plugin']);
      expect(byPath('/xstate')).toEqual(['xstate']);
      expect(byPath('/pino')).toEqual(['pino']);

      // the declarations resolve through the exports map (NodeNext, as an embedder compiles)
      await writeFile(
        join(project, 'check.ts'),
        [
          "import { createEmitter, type Edge, type Emitter } from 'batch-emitter';",
          "import { emitterLogic } from 'batch-emitter/xstate';",
          "import plugin from 'batch-emitter/plugin';",
          "import transport from 'batch-emitter/pino';",
          "const e: Emitter = createEmitter({ destinationUrl: 'https://x.test', spoolDir: './s' });",
          "const edge: Edge = { type: 'USES_MX', source: 'a', target: 'b', observed_at: '', probe_id: '', run_id: '' };",
          'void [e, edge, emitterLogic, plugin.name, transport];',
          '',
        ].join('\n'),
      );
      await writeFile(
        join(project, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            target: 'ES2022',
            strict: true,
            noEmit: true,
            skipLibCheck: true,
            typeRoots: [join(REPO, 'node_modules/@types')],
            types: ['node'],
          },
          files: ['check.ts'],
        }),
      );
      await run(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], {
        cwd: project,
      }).catch((error: { stdout?: string }) => {
        throw new Error(`tsc in the fresh project failed:\n${error.stdout ?? String(error)}`);
      });
    } finally {
      await dir.remove();
      sink.clear();
    }
  }, 180_000);
});
