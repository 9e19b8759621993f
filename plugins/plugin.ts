import type { z } from 'zod';
import { createEmitter, embeddedConfigSchema, type EmbeddedConfig, type HostServices } from '../src/index.js';
import type { Emitter } from '../src/emitter.js';
import { VERSION } from '../src/util/version.js';

/**
 * The plugin descriptor a host loads (`import plugin from 'batch-emitter/plugin'`):
 * `{ name, version, configSchema, create(config, host) }`. `create` validates the config
 * (ConfigError naming the option) and returns the lifecycle start, add*, flush, wait, close;
 * nothing is opened until `start()`.
 */

export interface EmitterLifecycle {
  /** open the spool, replay it, connect (when natsUrl is set); idempotent */
  start(): Promise<void>;
  /** resolves when the edge is durable in the spool; rejects InvalidItemError on bad input */
  addEdge(edge: unknown): Promise<void>;
  /** a NodeDomain, NodeIP or NodeCert, told apart by shape */
  addNode(node: unknown): Promise<void>;
  /** a generic event (a JSON object) under `subject` */
  add(subject: string, data: unknown): Promise<void>;
  /** seal the open batch now; resolves when it is durable */
  flush(): Promise<void>;
  /** resolves when every batch sealed so far is delivered, parked or dead-lettered */
  wait(): Promise<void>;
  /** stop intake, flush, wait (bounded by shutdownTimeoutS), close; idempotent */
  close(): Promise<void>;
  /** the emitter behind the lifecycle, for stats and dead letters */
  readonly emitter: Emitter;
}

export interface PluginDescriptor<Schema extends z.ZodType = typeof embeddedConfigSchema> {
  readonly name: string;
  readonly version: string;
  readonly configSchema: Schema;
  create(config: z.input<Schema>, host?: HostServices): EmitterLifecycle;
}

/** The lifecycle object of an emitter, with methods bound (safe to pass around detached). */
export function lifecycleOf(emitter: Emitter): EmitterLifecycle {
  return {
    emitter,
    start: () => emitter.start(),
    addEdge: (edge) => emitter.addEdge(edge),
    addNode: (node) => emitter.addNode(node),
    add: (subject, data) => emitter.add(subject, data),
    flush: () => emitter.flush(),
    wait: () => emitter.wait(),
    close: () => emitter.close(),
  };
}

export const plugin: PluginDescriptor = {
  name: 'batch-emitter',
  version: VERSION,
  configSchema: embeddedConfigSchema,
  create(config: EmbeddedConfig, host: HostServices = {}): EmitterLifecycle {
    return lifecycleOf(createEmitter(config, host));
  },
};

export default plugin;
