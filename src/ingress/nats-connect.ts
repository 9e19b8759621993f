import { readFile } from 'node:fs/promises';
import { credsAuthenticator, type NodeConnectionOptions } from '@nats-io/transport-node';
import type { NatsConfig } from '../config/index.js';

/** How to reach NATS as configured (servers, credentials, CA), under a client `name`. */
export async function natsConnectionOptions(
  config: NatsConfig,
  name: string,
): Promise<NodeConnectionOptions> {
  return {
    servers: config.servers,
    name,
    user: config.user,
    pass: config.password,
    token: config.token,
    authenticator: config.credsFile ? credsAuthenticator(await readFile(config.credsFile)) : undefined,
    tls: config.tlsCaFile ? { caFile: config.tlsCaFile } : undefined,
  };
}
