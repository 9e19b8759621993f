import { ConfigError } from './error.js';
import { ownWords } from './issues.js';
import { OPTIONS, VARIABLES, type OptionSpec, type Values, type VariableName } from './options.js';

/**
 * Reading every option of the table from one source (environment strings or embedded values),
 * with defaults and one refusal wording for both. Cross-field checks come after, elsewhere.
 */

export interface Source {
  /** environment strings are read with each kind's `text` schema, embedded values with `value` */
  readonly form: 'text' | 'value';
  /** the value given for a variable; undefined when unset */
  given(variable: VariableName): unknown;
  /** the name a refusal starts with: the variable, or the embedded option */
  nameOf(variable: VariableName): string;
}

export function readValues(source: Source, now: Date): Values {
  const values: Record<string, unknown> = {};
  for (const variable of VARIABLES) values[variable] = readOne(variable, source, now);
  return values as Values;
}

export function readOne(variable: VariableName, source: Source, now: Date): unknown {
  const spec: OptionSpec = OPTIONS[variable];
  const name = source.nameOf(variable);
  const given = source.given(variable);
  if (given !== undefined) return parse(spec, name, given, source.form);
  const required = spec.required;
  if (required && (source.form === 'value' || !required.embeddedOnly)) {
    throw new ConfigError(name, `is required (${required.hint})`);
  }
  const fallback = defaultOf(spec, source.form, now);
  return fallback === undefined ? undefined : parse(spec, name, fallback, 'text');
}

function defaultOf(spec: OptionSpec, form: Source['form'], now: Date): string | undefined {
  if (form === 'value' && spec.embeddedDefault !== undefined) return spec.embeddedDefault;
  return typeof spec.default === 'function' ? spec.default(now) : spec.default;
}

function parse(spec: OptionSpec, name: string, given: unknown, form: Source['form']): unknown {
  const schema = form === 'text' ? spec.kind.text : spec.kind.value;
  const result = schema.safeParse(given, { error: ownWords });
  if (result.success) return result.data;
  const expected = result.error.issues[0]?.message ?? 'not valid';
  throw new ConfigError(
    name,
    spec.kind.ownSentences ? expected : `${describeValue(spec, given)}; ${expected}`,
  );
}

/** The value as a refusal shows it: never a secret, never the credentials of a URL, never long. */
function describeValue(spec: OptionSpec, given: unknown): string {
  if (spec.secret) return 'has a value that is not valid';
  const whole = typeof given === 'string' ? given : (JSON.stringify(given) ?? String(given));
  const withoutCredentials = whole.replace(/\/\/[^@/\s]*@/g, '//[redacted]@');
  const shown = withoutCredentials.length > 60 ? `${withoutCredentials.slice(0, 60)}...` : withoutCredentials;
  return `is ${typeof given === 'string' ? JSON.stringify(shown) : shown}`;
}
