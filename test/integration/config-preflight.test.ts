import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../harness/cli-process.js';
import { tempDir } from '../../harness/workload.js';
import { testEnv } from '../support/env.js';

/**
 * A bad configuration is refused before anything is opened: the spool directory is not created
 * and the HTTP port is not bound. The port is held by this test, so a server started before the
 * check would fail with EADDRINUSE (exit 1) instead of the configuration's exit 2.
 */

let held: Server;
let port: number;

beforeAll(async () => {
  held = createServer();
  await new Promise<void>((resolve) => held.listen(0, '127.0.0.1', resolve));
  port = (held.address() as { port: number }).port;
});
afterAll(async () => {
  await new Promise<void>((resolve) => held.close(() => resolve()));
});

describe('configuration checked before start-up', () => {
  it.each([
    [
      'a mistyped variable',
      { TRANSMITTER_BATCHSIZE: '10' },
      /^TRANSMITTER_BATCHSIZE: is not a known variable; did you mean TRANSMITTER_BATCH_SIZE\?/,
    ],
    [
      'credentials in the destination URL',
      { TRANSMITTER_DESTINATION_URL: 'http://ingest:hunter2@127.0.0.1:9/v1/batch' },
      /^destination URL http:\/\/127\.0\.0\.1:9\/v1\/batch must not carry credentials/,
    ],
    [
      'a CA certificate file that does not exist',
      {
        TRANSMITTER_DESTINATION_URL: 'https://127.0.0.1:9/v1/batch',
        TRANSMITTER_CA_CERT: '/nonexistent/ca.pem',
      },
      /^cannot read CA certificate \(TRANSMITTER_CA_CERT\) \/nonexistent\/ca\.pem: ENOENT$/,
    ],
    [
      'a NATS credentials file that does not exist',
      { TRANSMITTER_NATS_URL: 'nats://127.0.0.1:9', TRANSMITTER_NATS_CREDS: '/nonexistent/user.creds' },
      /^TRANSMITTER_NATS_CREDS: cannot read \/nonexistent\/user\.creds: ENOENT$/,
    ],
    [
      'a header value that is not a string',
      { TRANSMITTER_HEADERS: '{"a": 1}' },
      /^TRANSMITTER_HEADERS: values must be strings; "a" is a number$/,
    ],
  ])('%s: exit 2, one line, no spool directory, no port bound', async (_what, extra, expected) => {
    const parent = await tempDir('preflight');
    const spoolDir = join(parent.path, 'spool');
    const env = testEnv({ sinkUrl: 'http://127.0.0.1:9/v1/batch', spoolDir, extra });
    env.TRANSMITTER_SERVER_PORT = String(port);
    const { code, stdout, stderr } = await runCli(env, ['run']);
    expect({ code, stdout }).toEqual({ code: 2, stdout: '' });
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]?.replace('batch-emitter: invalid configuration: ', '')).toMatch(expected);
    expect(stderr).not.toContain('hunter2');
    expect(existsSync(spoolDir)).toBe(false);
    await parent.remove();
  });
});
