import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { OPTIONS, VARIABLES } from '../../src/config/options.js';
import { MALLOC_TUNING } from '../../src/util/heap-tuning.js';
import { DEPLOY, dockerfileStages, execForm, envFile, unitSettings } from '../../harness/deploy-files.js';
import { startNats, type NatsServerHandle } from '../../harness/nats.js';
import { spawnEmitter, type EmitterProcess } from '../../harness/process.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { tempDir } from '../../harness/workload.js';
import { REPO } from '../fixtures/embed-support.js';
import { testEnv } from '../support/env.js';

/**
 * The files of deploy/ checked against the emitter they deploy: what cannot run here (a cluster,
 * an image build, systemd as PID 1) is checked for agreeing with the code, and its probe and
 * health check commands are run against a real emitter. The entry commands themselves are run in
 * service-stop.test.ts.
 */

const DEFAULT_PORT = Number(OPTIONS.TRANSMITTER_SERVER_PORT.default);
const DEFAULT_SHUTDOWN_S = Number(OPTIONS.TRANSMITTER_SHUTDOWN_TIMEOUT_S.default);

let nats: NatsServerHandle;
let sink: Sink;
let spool: Awaited<ReturnType<typeof tempDir>>;
let emitter: EmitterProcess;
let origin: string;

beforeAll(async () => {
  [nats, sink, spool] = await Promise.all([startNats(), startSink(), tempDir('deploy')]);
  emitter = spawnEmitter(testEnv({ natsUrl: nats.url, sinkUrl: sink.url, spoolDir: spool.path }));
  await emitter.ready;
  origin = new URL(/"http":"([^"]+)"/.exec(emitter.output())![1]!).origin;
});
afterAll(async () => {
  if (emitter) expect(await emitter.stop()).toBe(0);
  await Promise.all([nats?.stop(), sink?.close()]);
  await spool?.remove();
});

type Manifest = { kind: string; metadata: { name: string } } & Record<string, unknown>;
interface Container {
  ports: Array<{ name: string; containerPort: number }>;
  args: string[];
  envFrom: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
  env: Array<{ name: string; value?: string }>;
  volumeMounts: Array<{ name: string; mountPath: string }>;
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
}

function manifests(): Manifest[] {
  const text = readFileSync(join(DEPLOY, 'kubernetes/statefulset.yaml'), 'utf8');
  return parseAllDocuments(text).map((doc) => {
    expect(doc.errors).toEqual([]);
    return doc.toJS() as Manifest;
  });
}

describe('deploy/kubernetes/statefulset.yaml', () => {
  const docs = manifests();
  const byKind = <T = object>(kind: string) => docs.find((d) => d.kind === kind) as unknown as T & Manifest;
  const set = byKind<{
    spec: {
      replicas: number;
      template: { spec: { terminationGracePeriodSeconds: number; containers: Container[] } };
      volumeClaimTemplates: Array<{ metadata: { name: string }; spec: { accessModes: string[] } }>;
    };
  }>('StatefulSet');
  const pod = set.spec.template.spec;
  const container = pod.containers[0]!;
  const configMap = byKind<{ data: Record<string, string> }>('ConfigMap').data;
  const secret = byKind<{ stringData: Record<string, string> }>('Secret').stringData;
  const env = {
    ...configMap,
    ...Object.fromEntries(container.env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value!])),
  };

  it('names only variables the emitter knows, the token in the Secret and not in the ConfigMap', () => {
    const names = [...Object.keys(env), ...Object.keys(secret), ...container.env.map((e) => e.name)];
    const known = (n: string) => (VARIABLES as string[]).includes(n) || n in MALLOC_TUNING;
    expect(names.filter((n) => !known(n))).toEqual([]);
    expect(Object.keys(secret)).toEqual(['TRANSMITTER_AUTH_TOKEN']);
    expect(configMap).not.toHaveProperty('TRANSMITTER_AUTH_TOKEN');
    expect(container.envFrom).toEqual(
      expect.arrayContaining([
        { configMapRef: { name: byKind('ConfigMap').metadata.name } },
        { secretRef: { name: byKind('Secret').metadata.name } },
      ]),
    );
  });

  it('starts the emitter with the C heap tuning (MALLOC_TUNING)', () => {
    expect(env).toMatchObject(MALLOC_TUNING);
  });

  it('serves on the configured port (the default), probes /health for liveness and /ready for readiness', () => {
    const port = Number(env.TRANSMITTER_SERVER_PORT ?? DEFAULT_PORT);
    expect(port).toBe(DEFAULT_PORT);
    expect(container.ports).toEqual([{ name: 'http', containerPort: port }]);
    expect(container.livenessProbe.httpGet).toEqual({ path: '/health', port: 'http' });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/ready', port: 'http' });
    const service = byKind<{ spec: { ports: Array<{ port: number; targetPort: string }> } }>('Service');
    expect(service.spec.ports).toMatchObject([{ port, targetPort: 'http' }]);
  });

  it("the probes' paths answer on a running emitter: /health 200, /ready 200 once connected", async () => {
    const health = await fetch(`${origin}${container.livenessProbe.httpGet.path}`);
    expect(health.status).toBe(200);
    const ready = await fetch(`${origin}${container.readinessProbe.httpGet.path}`);
    expect(ready.status, await ready.text()).toBe(200);
  });

  it('gives each replica its own spool volume, three NATS URLs and a grace period above the shutdown timeout', () => {
    expect(set.spec.replicas).toBeGreaterThan(1);
    const [claim] = set.spec.volumeClaimTemplates;
    expect(claim!.spec.accessModes).toEqual(['ReadWriteOnce']);
    const mount = container.volumeMounts.find((m) => m.name === claim!.metadata.name)!;
    expect(posix.relative(mount.mountPath, env.TRANSMITTER_SPOOL_DIR!)).not.toMatch(/^\.\./);
    expect(env.TRANSMITTER_NATS_URL!.split(',')).toHaveLength(3);
    for (const url of env.TRANSMITTER_NATS_URL!.split(',')) expect(url).toMatch(/^nats:\/\/[^,\s]+:4222$/);
    const shutdownS = Number(env.TRANSMITTER_SHUTDOWN_TIMEOUT_S ?? DEFAULT_SHUTDOWN_S);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(shutdownS);
    expect(container.args).toEqual(['run']);
  });
});

describe('deploy/Dockerfile', () => {
  const stages = dockerfileStages(join(DEPLOY, 'Dockerfile'));
  const runtime = stages.at(-1)!;
  const all = (name: string) => runtime.filter((i) => i.name === name).map((i) => i.args);
  const last = (name: string) => all(name).at(-1)!;
  const image = Object.fromEntries(
    all('ENV').flatMap((args) => [...args.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!])),
  );

  it('builds in a stage of its own and runs as a non-root user with the spool on a volume', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(last('USER')).not.toMatch(/^(root|0)$/);
    const volumes = execForm(last('VOLUME'));
    expect(volumes.some((v) => !posix.relative(v, image.TRANSMITTER_SPOOL_DIR!).startsWith('..'))).toBe(true);
    expect(last('EXPOSE')).toBe(String(DEFAULT_PORT));
    expect(image.TRANSMITTER_SERVER_PORT).toBe(String(DEFAULT_PORT));
    expect(last('STOPSIGNAL')).toBe('SIGTERM');
  });

  it('starts the emitter with the C heap tuning (MALLOC_TUNING)', () => {
    expect(image).toMatchObject(MALLOC_TUNING);
  });

  it("starts the package's bin under an init (tini) that forwards signals", () => {
    const entry = execForm(last('ENTRYPOINT'));
    expect(entry.slice(0, 2)).toEqual(['/usr/bin/tini', '--']);
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
      bin: Record<string, string>;
    };
    const script = entry.find((a) => a.startsWith('/app/node_modules/batch-emitter/'))!;
    expect(posix.relative('/app/node_modules/batch-emitter', script)).toBe(
      posix.normalize(pkg.bin['batch-emitter']!),
    );
    expect(execForm(last('CMD'))).toEqual(['run']);
  });

  it('HEALTHCHECK (node fetch, no curl in node:20-slim) passes on a ready emitter and fails without one', async () => {
    const check = execForm(last('HEALTHCHECK').replace(/^(--\S+\s+)*CMD\s+/, ''));
    expect(check[0]).toBe('node');
    const run = (port: string) =>
      new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, check.slice(1), {
          env: { PATH: process.env.PATH ?? '', TRANSMITTER_SERVER_PORT: port },
          stdio: 'ignore',
        });
        child.once('exit', (code) => resolve(code));
      });
    expect(await run(new URL(origin).port)).toBe(0);
    // a port nothing listens on: the check fails rather than hangs or passes
    expect(await run(String(nats.port + 1))).toBe(1);
  });
});

describe('deploy/systemd/batch-emitter.service', () => {
  const unit = unitSettings(join(DEPLOY, 'systemd/batch-emitter.service'));
  const one = (key: string) => unit.get(key)?.at(-1);

  it('is hardened, keeps its spool in its StateDirectory and outwaits the shutdown timeout', () => {
    expect(one('DynamicUser') === 'yes' || (one('User') ?? 'root') !== 'root').toBe(true);
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('Restart')).toBe('on-failure');
    expect(one('KillSignal')).toBe('SIGTERM');
    const stateDir = one('StateDirectory')!;
    const environment = Object.fromEntries((unit.get('Environment') ?? []).map((e) => e.split('=', 2)));
    expect(dirname(environment.TRANSMITTER_SPOOL_DIR!)).toBe(`%S/${stateDir}`);
    const configured = envFile(join(DEPLOY, 'systemd/batch-emitter.env.example'));
    expect(configured).not.toHaveProperty('TRANSMITTER_SPOOL_DIR');
    expect(Object.keys(configured).filter((n) => !(VARIABLES as string[]).includes(n))).toEqual([]);
    expect(environment).toMatchObject(MALLOC_TUNING);
    const shutdownS = Number(configured.TRANSMITTER_SHUTDOWN_TIMEOUT_S ?? DEFAULT_SHUTDOWN_S);
    expect(Number(one('TimeoutStopSec'))).toBeGreaterThan(shutdownS);
  });
});
