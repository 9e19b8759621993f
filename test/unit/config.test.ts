import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, secretsOf, secretsOfEnv } from '../../src/config/index.js';

const base = { TRANSMITTER_DESTINATION_URL: 'https://ingest.example.com/v1/batch' };

function errorOf(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('applies the documented defaults', () => {
    const c = loadConfig(base, new Date('2026-01-02T03:04:05.678Z'));
    expect(c.server).toEqual({ host: '0.0.0.0', port: 8020, maxConnections: 256 });
    expect(c.nats).toMatchObject({
      servers: ['nats://127.0.0.1:4222'],
      stream: 'APPROVED',
      subjects: ['approved.>'],
      durable: 'transmitter',
    });
    expect(c.batch).toEqual({ maxItems: 1000, maxBytes: 5242880, intervalMs: 30_000 });
    expect(c.retry).toEqual({ maxAttempts: 10, initialDelayMs: 1000, multiplier: 2, maxDelayMs: 300_000 });
    expect(c.circuit).toEqual({ failureThreshold: 5, resetTimeoutMs: 60_000 });
    expect(c.spool).toEqual({ dir: './spool', maxBytes: 1073741824 });
    expect(c.destination).toMatchObject({ compression: 'gzip', concurrency: 2, allowInsecureHttp: false });
    expect(c.runId).toBe('run-20260102T030405Z');
    expect(c.databaseUrl).toBeUndefined();
    expect(c.inspectUrl).toBeUndefined();
  });

  it('accepts fractional seconds, comma lists and none', () => {
    const c = loadConfig({
      ...base,
      TRANSMITTER_BATCH_INTERVAL_S: '0.25',
      TRANSMITTER_NATS_URL: 'nats://a:4222, nats://b:4222',
    });
    expect(c.batch.intervalMs).toBe(250);
    expect(c.nats?.servers).toEqual(['nats://a:4222', 'nats://b:4222']);
    expect(loadConfig({ ...base, TRANSMITTER_NATS_URL: 'none' }).nats).toBeUndefined();
  });

  it.each([
    ['TRANSMITTER_BATCH_SIZE', 'abc', /whole number/],
    ['TRANSMITTER_BATCH_SIZE', '0', /between 1 and/],
    ['TRANSMITTER_SERVER_PORT', '70000', /between 0 and 65535/],
    ['TRANSMITTER_SERVER_MAX_CONNECTIONS', '0', /between 1 and 65535/],
    ['TRANSMITTER_BATCH_INTERVAL_S', '-1', /seconds/],
    ['TRANSMITTER_COMPRESSION', 'brotli', /gzip or none/],
    ['TRANSMITTER_ALLOW_INSECURE_HTTP', 'maybe', /true or false/],
    ['TRANSMITTER_NATS_URL', 'http://x', /nats:\/\//],
    ['TRANSMITTER_DESTINATION_URL', 'not a url', /https:\/\//],
    ['TRANSMITTER_HEADERS', '{oops', /JSON object/],
    ['TRANSMITTER_INSPECT', 'http://127.0.0.1:8080', /ws:\/\/ or wss:\/\//],
    ['TRANSMITTER_INSPECT', 'localhost:8080', /ws:\/\/ or wss:\/\//],
  ])('%s=%s is refused with a line naming it', (name, value, expected) => {
    const error = errorOf({ ...base, [name]: value });
    expect(error.variable).toBe(name);
    expect(error.message.startsWith(`${name}: `)).toBe(true);
    expect(error.message).toMatch(expected);
    expect(error.message).not.toContain('\n');
  });

  it('TRANSMITTER_CONCURRENCY: a whole number 1..256 or adaptive', () => {
    expect(loadConfig({ ...base, TRANSMITTER_CONCURRENCY: '8' }).destination.concurrency).toBe(8);
    expect(loadConfig({ ...base, TRANSMITTER_CONCURRENCY: 'adaptive' }).destination.concurrency).toBe(
      'adaptive',
    );
    for (const bad of ['0', '257', '1.5', 'Adaptive', 'auto']) {
      const error = errorOf({ ...base, TRANSMITTER_CONCURRENCY: bad });
      expect(error.variable, bad).toBe('TRANSMITTER_CONCURRENCY');
      expect(error.message, bad).toContain('expected a whole number between 1 and 256, or adaptive');
    }
  });

  it('requires the destination and refuses http:// unless allowed', () => {
    expect(errorOf({}).variable).toBe('TRANSMITTER_DESTINATION_URL');
    expect(errorOf({ TRANSMITTER_DESTINATION_URL: 'http://127.0.0.1:1/x' }).message).toMatch(
      /TRANSMITTER_ALLOW_INSECURE_HTTP/,
    );
    const ok = loadConfig({
      TRANSMITTER_DESTINATION_URL: 'http://127.0.0.1:1/x',
      TRANSMITTER_ALLOW_INSECURE_HTTP: 'true',
    });
    expect(ok.destination.allowInsecureHttp).toBe(true);
  });

  it('requires client cert and key together', () => {
    expect(errorOf({ ...base, TRANSMITTER_CLIENT_CERT: '/x.pem' }).variable).toBe('TRANSMITTER_CLIENT_KEY');
  });

  it('never echoes a secret value', () => {
    const error = errorOf({ ...base, TRANSMITTER_DATABASE_URL: 'mysql://user:hunter2@db' });
    expect(error.variable).toBe('TRANSMITTER_DATABASE_URL');
    expect(error.message).not.toContain('hunter2');
  });

  it('secretsOf: the token, the NATS password and token, the database password and every header value of 4 or more characters', () => {
    const env = {
      ...base,
      TRANSMITTER_AUTH_TOKEN: 'tok-1',
      TRANSMITTER_NATS_URL: 'nats://natsuser:pw%2Fin-url@127.0.0.1:4222',
      TRANSMITTER_NATS_TOKEN: 'nats-tok',
      TRANSMITTER_DATABASE_URL: 'postgresql://pg:pg-pass@db:5432/x',
      TRANSMITTER_HEADERS: JSON.stringify({ 'x-api-key': 'key-value', 'x-tenant': 'acme', 'x-version': '2' }),
    };
    const expected = ['tok-1', 'pw/in-url', 'nats-tok', 'pg-pass', 'key-value', 'acme'];
    expect(secretsOf(loadConfig(env)).sort()).toEqual([...expected].sort());
    // the operator commands read the same list from the environment without a whole configuration
    const { TRANSMITTER_DESTINATION_URL: _url, ...withoutDestination } = env;
    expect(secretsOfEnv(withoutDestination).sort()).toEqual([...expected].sort());
    expect(secretsOfEnv({ TRANSMITTER_HEADERS: '{broken', TRANSMITTER_NATS_URL: 'nats://[x' })).toEqual([]);
  });

  it('secretsOf: an api key in the destination URL (credential-named query values of 4 or more characters, the password), also for the operator commands', () => {
    const env = {
      ...base,
      TRANSMITTER_DESTINATION_URL:
        'https://ingest:url-pass@ingest.example.com/v1?api_key=k3y%2Fsecret&format=json&v=2',
    };
    expect(secretsOf(loadConfig(env)).sort()).toEqual(['k3y/secret', 'url-pass']);
    expect(secretsOfEnv(env).sort()).toEqual(['k3y/secret', 'url-pass']);
  });

  it('TRANSMITTER_INSPECT: a ws:// or wss:// URL, off when unset; its password and credential query values are secrets', () => {
    expect(loadConfig({ ...base, TRANSMITTER_INSPECT: 'ws://127.0.0.1:8080' }).inspectUrl).toBe(
      'ws://127.0.0.1:8080',
    );
    const env = { ...base, TRANSMITTER_INSPECT: 'wss://me:insp-pass@inspect.example.com/?token=insp-tok' };
    expect(secretsOf(loadConfig(env)).sort()).toEqual(['insp-pass', 'insp-tok']);
    expect(secretsOfEnv(env).sort()).toEqual(['insp-pass', 'insp-tok']);
  });

  it.each([
    [
      'malformed JSON',
      '{"x-api-key": "k3y-s3cr3t"',
      'TRANSMITTER_HEADERS: not a JSON object of strings (value not shown: it may hold secrets)',
    ],
    [
      'a value that is not a string',
      '{"x-api-key": ["k3y-s3cr3t"]}',
      'TRANSMITTER_HEADERS: values must be strings; "x-api-key" is an array',
    ],
    ['a number value', '{"a": 1}', 'TRANSMITTER_HEADERS: values must be strings; "a" is a number'],
    [
      'not an object',
      '["k3y-s3cr3t"]',
      'TRANSMITTER_HEADERS: must be a JSON object of strings; got an array',
    ],
  ])('TRANSMITTER_HEADERS with %s: says what is wrong, never the value', (_what, value, expected) => {
    const error = errorOf({ ...base, TRANSMITTER_HEADERS: value });
    expect(error.message).toBe(expected);
    expect(error.message).not.toContain('k3y');
  });

  it('an unknown TRANSMITTER_* variable is refused, naming it and the nearest known one', () => {
    const error = errorOf({ ...base, TRANSMITTER_BATCHSIZE: '10' });
    expect(error.variable).toBe('TRANSMITTER_BATCHSIZE');
    expect(error.message).toMatch(
      /^TRANSMITTER_BATCHSIZE: is not a known variable; did you mean TRANSMITTER_BATCH_SIZE\?/,
    );
    expect(errorOf({ ...base, TRANSMITTER_SPOOL_DIRECTORY: '/x' }).message).toContain(
      'did you mean TRANSMITTER_SPOOL_DIR?',
    );
    const two = errorOf({
      ...base,
      transmitter_debug: 'x',
      TRANSMITTER_DEBUGG: '1',
      TRANSMITTER_LOGLEVEL: 'x',
    });
    expect(two.variable).toBe('TRANSMITTER_DEBUGG');
    expect(two.message).toContain('did you mean TRANSMITTER_DEBUG?');
    expect(two.message).toContain('also unknown: TRANSMITTER_LOGLEVEL');
  });

  it("lets Kubernetes' service-link variables through, and still refuses a typo beside them", () => {
    const links = {
      TRANSMITTER_SERVICE_HOST: '10.0.0.7',
      TRANSMITTER_SERVICE_PORT: '8020',
      TRANSMITTER_SERVICE_PORT_HTTP: '8020',
      TRANSMITTER_PORT: 'tcp://10.0.0.7:8020',
      TRANSMITTER_PORT_8020_TCP: 'tcp://10.0.0.7:8020',
      TRANSMITTER_PORT_8020_TCP_PROTO: 'tcp',
      TRANSMITTER_PORT_8020_TCP_PORT: '8020',
      TRANSMITTER_PORT_8020_TCP_ADDR: '10.0.0.7',
    };
    expect(loadConfig({ ...base, ...links }).debug).toBe(false);
    expect(errorOf({ ...base, ...links, TRANSMITTER_PORTS: '1' }).variable).toBe('TRANSMITTER_PORTS');
  });

  it('booleans accept true/false, 1/0 and yes/no in any case', () => {
    const debugOf = (v: string) => loadConfig({ ...base, TRANSMITTER_DEBUG: v }).debug;
    for (const yes of ['true', 'TRUE', 'True', '1', 'yes', 'YES', 'Yes'])
      expect(debugOf(yes), yes).toBe(true);
    for (const no of ['false', 'FALSE', 'False', '0', 'no', 'NO', 'No']) expect(debugOf(no), no).toBe(false);
    for (const bad of ['on', 'y', '2', ' true']) {
      expect(errorOf({ ...base, TRANSMITTER_DEBUG: bad }).message, bad).toContain('expected true or false');
    }
  });
});
