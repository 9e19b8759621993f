import { z } from 'zod';
import { configOf } from './assemble.js';
import { closestName } from './closest.js';
import { ConfigError } from './error.js';
import { loadConfig } from './load.js';
import { OPTIONS, VARIABLES, type Options, type VariableName } from './options.js';
import { readValues, type Source } from './read.js';
import type { Config } from './types.js';

/**
 * The options of an embedded emitter: the camelCase names of the table, validated directly with
 * the same kinds, defaults and cross-field checks as the environment. The process environment is
 * never read here; errors name the option.
 */

type Option<K extends VariableName> = Options[K] extends { option: infer O extends string } ? O : never;
type Schema<K extends VariableName> = Options[K] extends { required: object }
  ? Options[K]['kind']['value']
  : z.ZodOptional<Options[K]['kind']['value']>;
type EmbeddedShape = { [K in VariableName as Option<K>]: Schema<K> };

const OPTION_OF = new Map<VariableName, string>(
  VARIABLES.flatMap((variable) => {
    const { option } = OPTIONS[variable] as { option?: string };
    return option === undefined ? [] : [[variable, option] as const];
  }),
);

function embeddedShape(): EmbeddedShape {
  const shape: Record<string, z.ZodType> = {};
  for (const [variable, option] of OPTION_OF) {
    const spec = OPTIONS[variable];
    shape[option] = 'required' in spec ? spec.kind.value : spec.kind.value.optional();
  }
  return shape as EmbeddedShape;
}

/**
 * Every option checked for shape and range (not the checks across options), for plugin hosts that
 * validate a descriptor's config before `create`. Its output is a valid input again.
 */
export const embeddedConfigSchema = z.object(embeddedShape()).strict();

export type EmbeddedConfig = z.input<typeof embeddedConfigSchema>;

/** A record of TRANSMITTER_* strings, as the service reads from its environment. */
export type TransmitterEnv = Record<`TRANSMITTER_${string}`, string | undefined>;

function isTransmitterEnv(options: object): options is TransmitterEnv {
  const keys = Object.keys(options);
  return keys.length > 0 && keys.every((k) => k.startsWith('TRANSMITTER_'));
}

function embeddedSource(options: Record<string, unknown>): Source {
  return {
    form: 'value',
    given: (variable) => {
      const option = OPTION_OF.get(variable);
      return option === undefined ? undefined : options[option];
    },
    nameOf: (variable) => OPTION_OF.get(variable) ?? variable,
  };
}

function refuseUnknown(options: object): void {
  const known = new Set(OPTION_OF.values());
  const unknown = Object.keys(options).filter((key) => !known.has(key));
  const [first] = unknown;
  if (first === undefined) return;
  const nearest = closestName(first, [...known]);
  throw new ConfigError(
    'options',
    `unknown option${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (did you mean ${nearest}?)`,
  );
}

/**
 * Validate embedded options (or a TRANSMITTER_* record) into the emitter's Config.
 * Throws ConfigError naming the option (or the variable) and what is wrong; never echoes secrets.
 */
export function resolveConfig(options: EmbeddedConfig | TransmitterEnv, now = new Date()): Config {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError('options', 'expected an object of emitter options');
  }
  if (isTransmitterEnv(options)) {
    return loadConfig({ TRANSMITTER_NATS_URL: 'none', ...options } as NodeJS.ProcessEnv, now);
  }
  refuseUnknown(options);
  const source = embeddedSource(options as Record<string, unknown>);
  return configOf(readValues(source, now), source.nameOf);
}
