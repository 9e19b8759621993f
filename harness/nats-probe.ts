/**
 * Finding NATS: the first URL of a list where a server answers (and whether it has JetStream), and
 * the nats-server binary. Reads only; it never creates anything on a server it finds.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { tcpAnswers } from './nats.js';

export interface FoundNats {
  url: string;
  jetstream: boolean;
}

function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url.includes('://') ? url : `nats://${url}`);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 4222) };
}

async function reachable(url: string): Promise<boolean> {
  try {
    const { host, port } = hostPort(url);
    return await tcpAnswers(host, port, 1000);
  } catch {
    return false;
  }
}

async function hasJetStream(nc: NatsConnection): Promise<boolean> {
  try {
    await jetstreamManager(nc, { timeout: 1000 });
    return true;
  } catch {
    return false;
  }
}

/** The first URL where a NATS server answers (TCP, then a NATS connect; 1 s each). */
export async function probeNats(
  urls: string[],
  name = 'batch-emitter-probe',
): Promise<FoundNats | undefined> {
  for (const url of urls) {
    if (!(await reachable(url))) continue;
    let nc: NatsConnection;
    try {
      nc = await connect({ servers: url, timeout: 1000, reconnect: false, name });
    } catch {
      continue;
    }
    try {
      return { url, jetstream: await hasJetStream(nc) };
    } finally {
      await nc.close().catch(() => undefined);
    }
  }
  return undefined;
}

/** nats-server from PATH; Debian installs it in /usr/sbin, which a normal user's PATH lacks. */
export function findNatsServer(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const dir of dirs.filter(Boolean)) {
    const candidate = join(dir, 'nats-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
