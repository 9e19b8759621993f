/**
 * Configuration: one option table (options.ts) and what is derived from it. Stages import the
 * Config type from here; none of them reads the environment itself.
 */
export { ConfigError } from './error.js';
export type { Config, NatsConfig, SecretSettings } from './types.js';
export { OPTIONS, VARIABLES, type OptionSpec, type VariableName } from './options.js';
export { loadConfig, loadVariable, refuseUnknownVariables } from './load.js';
export { ownWords } from './issues.js';
export { embeddedConfigSchema, resolveConfig, type EmbeddedConfig, type TransmitterEnv } from './embedded.js';
export { MIN_HEADER_SECRET_CHARS, secretsOf, secretsOfEnv } from './secrets.js';
export { configTable, variablesHelp } from './docs.js';
