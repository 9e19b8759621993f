import { resolveConfig, type EmbeddedConfig, type TransmitterEnv } from './config/index.js';
import { Emitter } from './emitter.js';
import type { Logger } from './util/logger.js';

/**
 * The public surface for programs that embed the emitter (start, add*, flush, wait, close):
 *
 *   const emitter = createEmitter({ destinationUrl: 'https://ingest.example/v1', spoolDir: './spool' });
 *   await emitter.start();
 *   await emitter.addEdge({ type: 'RESOLVES_TO', source, target, observed_at, probe_id, run_id });
 *   await emitter.flush(); await emitter.wait(); await emitter.close();
 *
 * `createEmitter` takes a plain camelCase object (EmbeddedConfig), or a record of TRANSMITTER_*
 * strings exactly as the service reads them from its environment. Either way the values go through
 * the option table's validation, as the service's do, and the process environment is NOT read.
 * Unlike the service, an embedded emitter consumes no NATS unless asked: `natsUrl` absent or
 * 'none' means in-process input only.
 */

export { Emitter, EmitterNotStartedError, type EmitterOptions } from './emitter.js';
export { IntakeClosedError, ItemTooLargeError, SpoolWriteAbandonedError } from './intake/intake.js';
export type { PauseReason } from './intake/intake.js';
export { SpoolError } from './spool/handle.js';
export { SpoolDestinationError } from './spool/destination.js';
export {
  ConfigError,
  embeddedConfigSchema,
  loadConfig,
  resolveConfig,
  type Config,
  type EmbeddedConfig,
  type NatsConfig,
  type TransmitterEnv,
} from './config/index.js';
export {
  EDGE_TYPES,
  InvalidItemError,
  type Edge,
  type Node,
  type NodeCert,
  type NodeDomain,
  type NodeIP,
  type EventRecord,
  type BatchDocument,
} from './model.js';
export type { DeadLetter } from './spool/spool.js';
export type { Logger } from './util/logger.js';
export { VERSION } from './util/version.js';

export interface HostServices {
  /** the host's pino logger; the emitter logs through a child of it. Default: its own pino logger. */
  logger?: Logger;
}

/**
 * A new (not started) Emitter from embedded options; see the module comment.
 * Call `start()` before adding, and `close()` when done.
 */
export function createEmitter(options: EmbeddedConfig | TransmitterEnv, host: HostServices = {}): Emitter {
  const config = resolveConfig(options);
  const logger = host.logger?.child({ component: 'batch-emitter' });
  return new Emitter(config, logger ? { logger } : {});
}
