import { accessSync, constants } from 'node:fs';
import { ConfigError, type NatsConfig } from '../config/index.js';

/**
 * The files the NATS connection will read (credentials, CA bundle), checked readable before
 * anything is opened: a missing file is a configuration mistake, not a connection failure.
 */
export function checkNatsFiles(config: NatsConfig): void {
  const files = [
    ['TRANSMITTER_NATS_CREDS', config.credsFile],
    ['TRANSMITTER_NATS_TLS_CA', config.tlsCaFile],
  ] as const;
  for (const [variable, path] of files) {
    if (path === undefined) continue;
    try {
      accessSync(path, constants.R_OK);
    } catch (error) {
      throw new ConfigError(
        variable,
        `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
  }
}
