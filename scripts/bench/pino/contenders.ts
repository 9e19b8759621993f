/**
 * The three pino transports compared, each configured as a user would for a loopback receiver of
 * its own protocol, with a 1 s batch interval everywhere:
 *   - batch-emitter/pino: this repo's transport (the bench's build of plugins/pino.ts), spool on disk
 *   - pino-loki (JSON push; its default buffer of 10,000 lines, which drops the oldest when full)
 *   - pino-opentelemetry-transport with the OpenTelemetry BatchLogRecordProcessor (its defaults:
 *     queue of 2,048 records, 512 per export, 1 s delay) and the OTLP/HTTP JSON exporter
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { CountingReceiver, Protocol } from './receiver.js';

export interface Contender {
  name: string;
  /** what pino's worker loads */
  target: string;
  protocol: Protocol;
  /** it keeps accepted lines on disk across a restart */
  spools: boolean;
  options(receiver: CountingReceiver, spoolDir: string): Record<string, unknown>;
}

const require = createRequire(import.meta.url);

/** the installed version of a package (its package.json, found from here) */
export function versionOf(pkg: string): string {
  const main = require.resolve(pkg);
  const root = main.slice(0, main.lastIndexOf(`node_modules/${pkg}/`) + `node_modules/${pkg}/`.length);
  return (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
}

export function contenders(buildDir: string): Contender[] {
  return [
    {
      name: 'batch-emitter/pino',
      target: join(buildDir, 'plugins', 'pino.js'),
      protocol: 'batches',
      spools: true,
      options: (receiver, spoolDir) => ({
        destinationUrl: receiver.url('batches'),
        spoolDir,
        allowInsecureHttp: true,
        batchIntervalS: 1,
        retryMaxDelayS: 2,
        circuitResetTimeoutS: 2,
        probeId: 'bench-probe',
        runId: 'bench-pino',
      }),
    },
    {
      name: `pino-loki ${versionOf('pino-loki')}`,
      target: 'pino-loki',
      protocol: 'loki',
      spools: false,
      options: (receiver) => ({ host: receiver.origin, batching: { interval: 1 } }),
    },
    {
      name: `pino-opentelemetry-transport ${versionOf('pino-opentelemetry-transport')}`,
      target: 'pino-opentelemetry-transport',
      protocol: 'otlp',
      spools: false,
      options: (receiver) => ({
        logRecordProcessorOptions: {
          recordProcessorType: 'batch',
          exporterOptions: { protocol: 'http', httpExporterOptions: { url: receiver.url('otlp') } },
        },
      }),
    },
  ];
}
