import { z } from 'zod';
import { kindOf } from './issues.js';

/**
 * The kinds of option value, each as two zod schemas that share one range check and one wording:
 * `value` for a typed embedded option, `text` for the same value as an environment string.
 * A kind only validates; it never applies defaults or reads the environment.
 */

export interface Kind<V extends z.ZodType = z.ZodType> {
  /** the value as an embedder passes it (a number, a boolean, a list...) */
  readonly value: V;
  /** the same value from its environment string, checked by `value` once decoded */
  readonly text: z.ZodType<z.output<V>, string>;
  /** the kind's refusals are whole sentences that never show the value (it may hold secrets) */
  readonly ownSentences?: true;
  /** how the value is written, when the meaning does not say it (the README table appends it) */
  readonly form?: string;
}

/** A kind whose environment string is already its value. */
function same<V extends z.ZodType<unknown, string>>(value: V): Kind<V> {
  return { value, text: value as z.ZodType<z.output<V>, string> };
}

export function text() {
  const error = 'expected a non-empty value';
  return same(z.string({ error }).min(1, { error }));
}

/** A stream or consumer name. */
export function name(what: string) {
  const error = `expected a ${what}`;
  return same(z.string({ error }).regex(/^[A-Za-z0-9_-]+$/, { error }));
}

export function int(min: number, max = Number.MAX_SAFE_INTEGER): Kind<z.ZodNumber> {
  const error = `expected a whole number between ${min} and ${max}`;
  const value = z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
  return { value, text: z.string().regex(/^\d+$/, { error }).transform(Number).pipe(value) };
}

/** A whole number of requests at once, or `adaptive` (the limit then follows the destination). */
export function concurrency(max: number) {
  const error = `expected a whole number between 1 and ${max}, or adaptive`;
  const count = z.number({ error }).int({ error }).min(1, { error }).max(max, { error });
  const value = z.union([count, z.literal('adaptive')], { error });
  const text = z
    .string()
    .regex(/^(\d+|adaptive)$/, { error })
    .transform((v) => (v === 'adaptive' ? ('adaptive' as const) : Number(v)))
    .pipe(value);
  return { value, text };
}

/** Seconds, fractions allowed. */
export function seconds(min: number): Kind<z.ZodNumber> {
  const error = `expected a number of seconds, at least ${min}`;
  const value = z.number({ error }).min(min, { error });
  const form = `expected a number of seconds (fractions allowed), at least ${min}`;
  return {
    value,
    text: z
      .string()
      .regex(/^\d+(\.\d+)?$/, { error: form })
      .transform(Number)
      .pipe(value),
  };
}

export function positiveNumber(): Kind<z.ZodNumber> {
  const error = 'expected a positive number';
  const value = z.number({ error }).gt(0, { error });
  return {
    value,
    text: z
      .string()
      .regex(/^\d+(\.\d+)?$/, { error })
      .transform(Number)
      .pipe(value),
  };
}

/** The words a boolean variable accepts, in any case. */
export const BOOLEAN_WORDS = { true: ['true', '1', 'yes'], false: ['false', '0', 'no'] } as const;

export function bool(): Kind<z.ZodBoolean> {
  const error = 'expected true or false (also 1 or 0, yes or no, in any case)';
  const words: readonly string[] = [...BOOLEAN_WORDS.true, ...BOOLEAN_WORDS.false];
  const text = z
    .string()
    .transform((v) => v.toLowerCase())
    .refine((v) => words.includes(v), { error })
    .transform((v) => (BOOLEAN_WORDS.true as readonly string[]).includes(v));
  const form = '`true`/`false`, `1`/`0` or `yes`/`no`, in any case';
  return { value: z.boolean({ error: 'expected true or false' }), text, form };
}

/** One of a few words; the message lists them. */
export function choice<const T extends readonly [string, ...string[]]>(words: T) {
  const error = `expected ${words.slice(0, -1).join(', ')} or ${words.at(-1)}`;
  return same(z.enum(words, { error }));
}

const split = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** A comma list in the environment; a string (comma list) or an array of strings embedded. */
export function list(item: z.ZodString, emptyError: string) {
  const items = z.array(item).min(1, { error: emptyError });
  const value = z
    .union([z.string(), z.array(z.string())], { error: emptyError })
    .transform((v) => split(Array.isArray(v) ? v.join(',') : v))
    .pipe(items);
  return { value, text: z.string().transform(split).pipe(items) };
}

/** nats://host:port[,...] or none. */
export function natsUrls() {
  const error = 'expected nats://host:port[,nats://...] or none';
  const urls = list(
    z.string().regex(/^(nats|tls|wss?):\/\/[^\s]+$/, { error: 'expected nats://host:port' }),
    error,
  );
  return {
    value: z.union([z.literal('none'), urls.value], { error }),
    text: z.union([z.literal('none'), urls.text], { error }),
  };
}

export function subjects() {
  const error = 'expected subject[,subject...]';
  return list(z.string({ error }).regex(/^[^\s]+$/, { error }), error);
}

export function httpsUrl() {
  return same(z.url({ protocol: /^https?$/, error: 'expected an https:// (or http://) URL' }));
}

export function wsUrl() {
  return same(z.url({ protocol: /^wss?$/, error: 'expected a ws:// or wss:// URL' }));
}

export function postgresUrl() {
  const error = 'expected postgresql://user@host:port/db';
  return same(z.string({ error }).regex(/^postgres(ql)?:\/\//, { error }));
}

const NOT_JSON = 'not a JSON object of strings (value not shown: it may hold secrets)';
const NOT_OBJECT = (input: unknown) => `must be a JSON object of strings; got ${kindOf(input)}`;

/** Extra HTTP headers: a JSON object of strings in the environment, an object embedded. */
export function headers() {
  const valueError = (issue: { path?: PropertyKey[]; input?: unknown }) =>
    `values must be strings; ${JSON.stringify(String(issue.path?.[0] ?? ''))} is ${kindOf(issue.input)}`;
  const value = z.record(z.string(), z.string({ error: valueError }), {
    error: (issue) => NOT_OBJECT(issue.input),
  });
  const text = z
    .string()
    .transform((v, ctx) => {
      try {
        return JSON.parse(v) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: NOT_JSON });
        return z.NEVER;
      }
    })
    .pipe(value);
  return { value, text, ownSentences: true as const };
}
