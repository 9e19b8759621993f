import { configOf } from './assemble.js';
import { OPTIONS, type VariableName } from './options.js';
import { readValues, type Source } from './read.js';
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

/** Parse the environment. Throws ConfigError (never echoing a secret value). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, now = new Date()): Config {
  const source = environmentSource(env);
  return configOf(readValues(source, now), source.nameOf);
}
