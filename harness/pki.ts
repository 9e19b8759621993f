import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { atProcessEnd } from './cleanup.js';

/**
 * Test PKI built with the `openssl` CLI, once per process (cached), in a private temp dir that is
 * removed at process exit. EC P-256 keys (fast). All files are 0600.
 *
 *   ca          test CA (CA:TRUE)
 *   server      CN=localhost, SAN DNS:localhost + IP:127.0.0.1, serverAuth, signed by ca
 *   client      CN=test-client, clientAuth, signed by ca
 *   wrongCa     an unrelated CA
 *   wrongClient CN=wrong-client, clientAuth, signed by wrongCa
 *   wrongServer CN=localhost with the same SANs, signed by wrongCa
 *   selfSigned  CN=localhost with the same SANs, self-signed (not a CA)
 */

const run = promisify(execFile);

export interface PemFiles {
  certPath: string;
  keyPath: string;
  cert: string;
  key: string;
}

export interface TestPki {
  dir: string;
  ca: PemFiles;
  server: PemFiles;
  client: PemFiles;
  wrongCa: PemFiles;
  wrongClient: PemFiles;
  wrongServer: PemFiles;
  selfSigned: PemFiles;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
const SERVER_EXT = [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature,keyEncipherment',
  'extendedKeyUsage=serverAuth',
  'subjectAltName=DNS:localhost,IP:127.0.0.1',
].join('\n');
const CLIENT_EXT = [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature,keyEncipherment',
  'extendedKeyUsage=clientAuth',
].join('\n');

async function openssl(dir: string, args: string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd: dir });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

function files(dir: string, name: string): PemFiles {
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  for (const p of [certPath, keyPath]) chmodSync(p, 0o600);
  return { certPath, keyPath, cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') };
}

async function makeCa(dir: string, name: string, cn: string): Promise<PemFiles> {
  await openssl(dir, [
    'req',
    '-x509',
    ...EC,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.crt`,
    '-days',
    '30',
    '-subj',
    `/CN=${cn}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return files(dir, name);
}

async function makeLeaf(dir: string, name: string, cn: string, ext: string, ca: string): Promise<PemFiles> {
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(extFile, `${ext}\n`, { mode: 0o600 });
  await openssl(dir, [
    'req',
    '-new',
    ...EC,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${cn}`,
  ]);
  await openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.crt`,
    '-CAkey',
    `${ca}.key`,
    // explicit random serials: parallel signings with -CAcreateserial would race on the .srl file
    '-set_serial',
    `0x${randomBytes(12).toString('hex')}`,
    '-out',
    `${name}.crt`,
    '-days',
    '30',
    '-extfile',
    extFile,
  ]);
  rmSync(join(dir, `${name}.csr`), { force: true });
  rmSync(extFile, { force: true });
  return files(dir, name);
}

async function makeSelfSigned(dir: string, name: string): Promise<PemFiles> {
  const args = ['req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '30'];
  args.push('-subj', '/CN=localhost');
  for (const line of SERVER_EXT.split('\n')) args.push('-addext', line);
  await openssl(dir, args);
  return files(dir, name);
}

async function build(): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), 'batch-emitter-pki-'));
  atProcessEnd(() => rmSync(dir, { recursive: true, force: true }));
  const [ca, wrongCa] = await Promise.all([
    makeCa(dir, 'ca', 'batch-emitter test CA'),
    makeCa(dir, 'wrong-ca', 'unrelated test CA'),
  ]);
  const [server, client, wrongClient, wrongServer, selfSigned] = await Promise.all([
    makeLeaf(dir, 'server', 'localhost', SERVER_EXT, 'ca'),
    makeLeaf(dir, 'client', 'test-client', CLIENT_EXT, 'ca'),
    makeLeaf(dir, 'wrong-client', 'wrong-client', CLIENT_EXT, 'wrong-ca'),
    makeLeaf(dir, 'wrong-server', 'localhost', SERVER_EXT, 'wrong-ca'),
    makeSelfSigned(dir, 'self-signed'),
  ]);
  return { dir, ca, server, client, wrongCa, wrongClient, wrongServer, selfSigned };
}

let cached: Promise<TestPki> | undefined;

/** The process-wide test PKI (built on first call). */
export function getTestPki(): Promise<TestPki> {
  cached ??= build();
  return cached;
}
