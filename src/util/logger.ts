import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { Redactor, toPlain } from './redact.js';

export type { Logger };

/** Paths that may hold secrets anywhere in a log record; pino replaces them before writing. */
export const REDACT_PATHS = [
  'authToken',
  'password',
  'token',
  'authorization',
  '*.authToken',
  '*.password',
  '*.token',
  '*.authorization',
  '*.headers.authorization',
];

/**
 * A pino logger. Besides the paths above, every string of every record (message, fields, errors)
 * passes a Redactor of `secrets` (see secretsOf), so a configured secret quoted by a third party
 * (a receiver echoing our headers, an error message) never reaches the log.
 */
export function createLogger(
  level: string,
  destination?: DestinationStream,
  secrets: Array<string | undefined> = [],
): Logger {
  const redactor = new Redactor(secrets);
  const scrub = (text: string): string => redactor.scrub(text);
  const options: LoggerOptions = {
    level,
    base: { name: 'batch-emitter' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    formatters: { log: (record) => scrubRecord(record, scrub) },
    hooks: {
      logMethod(args, method) {
        const scrubbed = args.map((arg: unknown) => (typeof arg === 'string' ? scrub(arg) : arg));
        method.apply(this, scrubbed as Parameters<typeof method>);
      },
    },
  };
  return destination ? pino(options, destination) : pino(options);
}

function scrubRecord(
  record: Record<string, unknown>,
  scrub: (text: string) => string,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) {
    out[key] = value instanceof Error ? scrubError(value, scrub) : toPlain(value, scrub);
  }
  return out;
}

/** A copy of the error, same class, its strings (message, stack, code ...) and its cause scrubbed. */
function scrubError(error: Error, scrub: (text: string) => string, depth = 0): Error {
  const copy = Object.create(Object.getPrototypeOf(error) as object) as Record<string, unknown>;
  for (const key of Object.getOwnPropertyNames(error)) {
    const value = (error as unknown as Record<string, unknown>)[key];
    if (typeof value === 'string') copy[key] = scrub(value);
    else if (value instanceof Error) copy[key] = depth < 8 ? scrubError(value, scrub, depth + 1) : undefined;
    else copy[key] = toPlain(value, scrub);
  }
  return copy as unknown as Error;
}
