import { configOf } from './assemble.js';
import { closestName } from './closest.js';
import { ConfigError } from './error.js';
import { OPTIONS, VARIABLES, type VariableName } from './options.js';
import { readOne, readValues, type Source } from './read.js';
import type { Values } from './options.js';
import type { Config } from './types.js';

/**
 * The service's configuration from TRANSMITTER_* environment variables, read once at start-up.
 * It never echoes a secret value in its ConfigError.
 */

/** Empty counts as unset where unset is allowed; a variable with a default refuses it. */
function given(env: NodeJS.ProcessEnv, variable: VariableName): string | undefined {
  const raw = env[variable];
  return raw === '' && !('default' in OPTIONS[variable]) ? undefined : raw;
}

function environmentSource(env: NodeJS.ProcessEnv): Source {
  return {
    form: 'text',
    given: (variable: VariableName) => given(env, variable),
    nameOf: (variable: VariableName) => variable,
  };
}

/**
 * A TRANSMITTER_* variable that is no option is a mistake (a typo silently leaves the default in
 * force): refused, naming it and the nearest known variable.
 */
export function refuseUnknownVariables(env: NodeJS.ProcessEnv): void {
  const unknown = Object.keys(env)
    .filter((key) => key.startsWith('TRANSMITTER_') && !(key in OPTIONS) && !isServiceLink(key))
    .sort();
  const [first, ...more] = unknown;
  if (first === undefined) return;
  const also = more.length > 0 ? `; also unknown: ${more.join(', ')}` : '';
  throw new ConfigError(
    first,
    `is not a known variable; did you mean ${closestName(first, VARIABLES)}? ` +
      `(batch-emitter run --help lists them)${also}`,
  );
}

/**
 * Kubernetes gives every pod variables for each Service in its namespace (service links): a
 * Service named `transmitter` brings TRANSMITTER_SERVICE_HOST, TRANSMITTER_PORT_8020_TCP and the
 * like. They are not ours and not typos, so they are let through.
 */
const SERVICE_LINK =
  /^TRANSMITTER_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_\d+_(TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?)?)$/;

function isServiceLink(key: string): boolean {
  return SERVICE_LINK.test(key);
}

/** Parse the environment. Throws ConfigError (never echoing a secret value). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, now = new Date()): Config {
  refuseUnknownVariables(env);
  const source = environmentSource(env);
  return configOf(readValues(source, now), source.nameOf);
}

/** One variable, read and checked as loadConfig reads it, for a command that needs only it. */
export function loadVariable<K extends VariableName>(
  variable: K,
  env: NodeJS.ProcessEnv,
  now = new Date(),
): Values[K] {
  refuseUnknownVariables(env);
  return readOne(variable, environmentSource(env), now) as Values[K];
}
