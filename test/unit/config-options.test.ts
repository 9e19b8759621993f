import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  OPTIONS,
  VARIABLES,
  configTable,
  embeddedConfigSchema,
  loadConfig,
  ownWords,
  resolveConfig,
  variablesHelp,
  type OptionSpec,
} from '../../src/config/index.js';
import { configTableIn } from '../../scripts/config-table.js';

const now = new Date('2026-01-02T03:04:05.678Z');
const required = { destinationUrl: 'https://ingest.example.com/v1', spoolDir: '/tmp/spool' };
const requiredEnv = {
  TRANSMITTER_DESTINATION_URL: required.destinationUrl,
  TRANSMITTER_SPOOL_DIR: required.spoolDir,
  TRANSMITTER_NATS_URL: 'none',
};

/** A valid typed value per embedded option, other than its default. */
const SAMPLES: Record<string, unknown> = {
  natsUrl: ['nats://a:4222', 'nats://b:4222'],
  natsStream: 'S1',
  natsSubjects: ['a.>', 'b.>'],
  natsDurable: 'd1',
  natsAckWaitS: 90.5,
  natsUser: 'u',
  natsPassword: 'pw-secret',
  natsToken: 'tok-secret',
  natsCreds: '/creds',
  natsTlsCa: '/ca.pem',
  destinationUrl: 'https://other.example.com/x',
  authToken: 'bearer-secret',
  clientCert: '/cert.pem',
  clientKey: '/key.pem',
  caCert: '/ca2.pem',
  allowInsecureHttp: true,
  headers: { 'x-api-key': 'k3y-s3cr3t', 'x-v': '2' },
  compression: 'none',
  gzipLevel: 3,
  batchSize: 7,
  batchMaxBytes: 4096,
  batchIntervalS: 0.25,
  concurrency: 5,
  requestTimeoutS: 1.5,
  retryMaxAttempts: 3,
  retryInitialDelayS: 0.5,
  retryBackoffMultiplier: 1.5,
  retryMaxDelayS: 9,
  circuitFailureThreshold: 2,
  circuitResetTimeoutS: 4,
  shutdownTimeoutS: 0,
  spoolDir: '/tmp/other-spool',
  spoolMaxBytes: 2 * 1024 * 1024,
  databaseUrl: 'postgresql://pg:pg-pass@db:5432/x',
  probeId: 'probe-9',
  runId: 'run-9',
  logLevel: 'warn',
  inspect: 'wss://inspector.example.com:8443/',
};

/** Options that are only valid with their pair (mTLS cert and key). */
const PAIRS: Record<string, [option: string, variable: string]> = {
  clientCert: ['clientKey', 'TRANSMITTER_CLIENT_KEY'],
  clientKey: ['clientCert', 'TRANSMITTER_CLIENT_CERT'],
};

const asText = (value: unknown) =>
  Array.isArray(value) ? value.join(',') : typeof value === 'object' ? JSON.stringify(value) : String(value);

const embedded = VARIABLES.flatMap((variable) => {
  const { option } = OPTIONS[variable] as OptionSpec;
  return option === undefined ? [] : [[variable, option] as const];
});

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('the option table', () => {
  it('README.md holds the generated Configuration table (npm run docs:config -- --write)', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    expect(configTableIn(readme)).toBe(configTable());
  });

  it('run --help lists every variable', () => {
    const help = variablesHelp();
    for (const variable of VARIABLES) expect(help).toContain(`  ${variable} (`);
  });

  it('has a sample for every embedded option', () => {
    expect(embedded.map(([, option]) => option).sort()).toEqual(Object.keys(SAMPLES).sort());
  });

  it.each(embedded)(
    '%s: the embedded option and the variable give the same configuration',
    (variable, option) => {
      const value = SAMPLES[option];
      const [pairOption, pairVariable] = PAIRS[option] ?? [];
      const pair = pairOption === undefined ? {} : { [pairOption]: SAMPLES[pairOption] };
      const pairEnv = pairVariable === undefined ? {} : { [pairVariable]: asText(pair[pairOption!]) };
      const fromOptions = resolveConfig({ ...required, ...pair, [option]: value }, now);
      const fromEnv = loadConfig({ ...requiredEnv, ...pairEnv, [variable]: asText(value) }, now);
      expect(fromOptions).toEqual(fromEnv);
    },
  );

  it.each([
    ['TRANSMITTER_BATCH_SIZE', 'batchSize', 0],
    ['TRANSMITTER_CONCURRENCY', 'concurrency', 1000],
    ['TRANSMITTER_BATCH_INTERVAL_S', 'batchIntervalS', 0],
    ['TRANSMITTER_NATS_ACK_WAIT_S', 'natsAckWaitS', 0.5],
    ['TRANSMITTER_RETRY_BACKOFF_MULTIPLIER', 'retryBackoffMultiplier', 0],
    ['TRANSMITTER_COMPRESSION', 'compression', 'brotli'],
    ['TRANSMITTER_GZIP_LEVEL', 'gzipLevel', 10],
    ['TRANSMITTER_LOG_LEVEL', 'logLevel', 'loud'],
    ['TRANSMITTER_NATS_URL', 'natsUrl', 'http://x'],
    ['TRANSMITTER_NATS_STREAM', 'natsStream', 'a b'],
    ['TRANSMITTER_DESTINATION_URL', 'destinationUrl', 'ftp://x'],
    ['TRANSMITTER_DATABASE_URL', 'databaseUrl', 'mysql://u:hunter2@db'],
    ['TRANSMITTER_INSPECT', 'inspect', 'http://u:hunter2@inspector'],
  ])('%s and %s are refused in the same words', (variable, option, value) => {
    const fromEnv = refusal(() => loadConfig({ ...requiredEnv, [variable]: asText(value) }, now));
    const fromOptions = refusal(() => resolveConfig({ ...required, [option]: value }, now));
    expect(fromEnv.startsWith(`${variable}: `)).toBe(true);
    expect(fromOptions.startsWith(`${option}: `)).toBe(true);
    const expected = (message: string) => message.slice(message.indexOf('; '));
    expect(expected(fromOptions)).toBe(expected(fromEnv));
    expect(fromOptions).not.toContain('hunter2');
  });

  it('checks across options name the options, embedded', () => {
    expect(refusal(() => resolveConfig({ ...required, clientCert: '/c.pem' }, now))).toBe(
      'clientKey: must be set together with its pair for mTLS (cert and key)',
    );
    expect(refusal(() => resolveConfig({ ...required, retryInitialDelayS: 5, retryMaxDelayS: 1 }, now))).toBe(
      'retryMaxDelayS: must be at least retryInitialDelayS',
    );
    expect(refusal(() => resolveConfig({ destinationUrl: 'https://x.test' } as never, now))).toMatch(
      /^spoolDir: is required/,
    );
  });

  it('secrets: the flagged variables, whose refusals never show the value, embedded or not', () => {
    const secret = VARIABLES.filter((variable) => (OPTIONS[variable] as OptionSpec).secret !== undefined);
    expect(secret.sort()).toEqual(
      [
        'TRANSMITTER_AUTH_TOKEN',
        'TRANSMITTER_DATABASE_URL',
        'TRANSMITTER_DESTINATION_URL',
        'TRANSMITTER_HEADERS',
        'TRANSMITTER_INSPECT',
        'TRANSMITTER_NATS_PASSWORD',
        'TRANSMITTER_NATS_TOKEN',
      ].sort(),
    );
    const env = refusal(() =>
      loadConfig({ ...requiredEnv, TRANSMITTER_DATABASE_URL: 'mysql://u:s3cr3t@db' }, now),
    );
    expect(env).toBe(
      'TRANSMITTER_DATABASE_URL: has a value that is not valid; expected postgresql://user@host:port/db',
    );
    const embeddedDb = refusal(() => resolveConfig({ ...required, databaseUrl: 'mysql://u:s3cr3t@db' }, now));
    expect(embeddedDb).toBe(
      'databaseUrl: has a value that is not valid; expected postgresql://user@host:port/db',
    );
    const headers = refusal(() =>
      resolveConfig({ ...required, headers: { a: 'k3y-s3cr3t', b: 1 } } as never, now),
    );
    expect(headers).toBe('headers: values must be strings; "b" is a number');
  });

  it("refusals are the project's own words, never the validation library's, for every option in both forms", () => {
    // zod's own wording starts with these (e.g. "Invalid input: expected string, received number")
    const library =
      /Invalid (input|string|option|type|url)|Too (small|big)|received|Unrecognized|must match pattern/i;
    const badTexts = ['', ' ', 'x y', '-1', '1e9', '{"a":1}', '[1]', 'nats:// x', '\u0000'];
    const badValues: unknown[] = [null, 1.5, -1, 'x y', '', [], [1], { a: 1 }, true, 'adaptive!'];
    const seen: string[] = [];
    for (const variable of VARIABLES) {
      for (const text of badTexts) {
        try {
          loadConfig({ ...requiredEnv, [variable]: text }, now);
        } catch (error) {
          if (!(error instanceof ConfigError)) throw error;
          seen.push(error.message);
        }
      }
      const option = (OPTIONS[variable] as OptionSpec).option;
      if (option === undefined) continue;
      for (const value of badValues) {
        try {
          resolveConfig({ ...required, [option]: value } as never, now);
        } catch (error) {
          if (!(error instanceof ConfigError)) throw error;
          seen.push(error.message);
        }
        const checked = embeddedConfigSchema.safeParse({ ...required, [option]: value }, { error: ownWords });
        if (!checked.success) seen.push(...checked.error.issues.map((issue) => issue.message));
      }
    }
    expect(seen.length).toBeGreaterThan(200);
    expect(seen.filter((message) => library.test(message))).toEqual([]);
    // the plugin schema's own issues too (an unknown key), in the host's map
    const unknownKey = embeddedConfigSchema.safeParse({ ...required, batchsize: 1 }, { error: ownWords });
    expect(unknownKey.error?.issues[0]?.message).toBe('unknown key batchsize');
    expect(refusal(() => resolveConfig({ ...required, batchsize: 1 } as never, now))).toBe(
      'options: unknown option batchsize (did you mean batchSize?)',
    );
  });

  it('an empty variable is unset where unset is allowed, refused where there is a default', () => {
    expect(
      loadConfig({ ...requiredEnv, TRANSMITTER_AUTH_TOKEN: '' }, now).destination.authToken,
    ).toBeUndefined();
    expect(refusal(() => loadConfig({ ...requiredEnv, TRANSMITTER_BATCH_SIZE: '' }, now))).toMatch(
      /^TRANSMITTER_BATCH_SIZE: is ""; expected a whole number/,
    );
  });

  it('the plugin schema checks shape and range, and its output is a valid input again', () => {
    const parsed = embeddedConfigSchema.parse({ ...required, natsUrl: 'nats://a:4222,nats://b:4222' });
    expect(resolveConfig(parsed, now).nats?.servers).toEqual(['nats://a:4222', 'nats://b:4222']);
    expect(embeddedConfigSchema.safeParse({ ...required, batchSize: 0 }).success).toBe(false);
    expect(embeddedConfigSchema.safeParse({ ...required, debug: true }).success).toBe(false);
  });
});
