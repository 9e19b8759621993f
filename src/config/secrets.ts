import { splitCredentials } from './assemble.js';
import { OPTIONS, VARIABLES, type OptionSpec, type Values, type VariableName } from './options.js';
import type { SecretSettings } from './types.js';

/**
 * Every configured secret value, found through the `secret` entries of the option table: the one
 * list behind every Redactor (logs, HTTP responses, dead letters, operator command output).
 */

export { MIN_HEADER_SECRET_CHARS } from './secret-values.js';

export function secretsOf(config: SecretSettings): string[] {
  return VARIABLES.flatMap((variable) => (OPTIONS[variable] as OptionSpec).secret?.(config) ?? []).filter(
    (secret): secret is string => secret !== undefined && secret !== '',
  );
}

/** A variable's value when it is set and valid; undefined otherwise (never an error). */
function validOrUnset<K extends VariableName>(env: NodeJS.ProcessEnv, variable: K): Values[K] | undefined {
  const raw = env[variable];
  if (raw === undefined || raw === '') return undefined;
  const result = (OPTIONS[variable] as OptionSpec).kind.text.safeParse(raw);
  return result.success ? (result.data as Values[K]) : undefined;
}

function urlCredentials(natsUrl: Values['TRANSMITTER_NATS_URL'] | undefined) {
  try {
    return natsUrl === undefined || natsUrl === 'none' ? undefined : splitCredentials(natsUrl);
  } catch {
    return undefined; // not a URL: it carries no credentials we could find
  }
}

/**
 * secretsOf for the operator commands, which do not load (or need) the whole configuration: each
 * secret variable that is set and valid counts; an invalid one is skipped, not an error.
 */
export function secretsOfEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  const valid = <K extends VariableName>(variable: K) => validOrUnset(env, variable);
  const fromUrl = urlCredentials(valid('TRANSMITTER_NATS_URL'));
  return secretsOf({
    destination: {
      url: valid('TRANSMITTER_DESTINATION_URL'),
      authToken: valid('TRANSMITTER_AUTH_TOKEN'),
      headers: valid('TRANSMITTER_HEADERS') ?? {},
    },
    nats: {
      password: valid('TRANSMITTER_NATS_PASSWORD') ?? fromUrl?.password,
      token: valid('TRANSMITTER_NATS_TOKEN') ?? fromUrl?.token,
    },
    databaseUrl: valid('TRANSMITTER_DATABASE_URL'),
    inspectUrl: valid('TRANSMITTER_INSPECT'),
  });
}
