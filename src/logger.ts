import { pino, type DestinationStream, type Logger } from 'pino';

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

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { name: 'batch-emitter' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  return destination ? pino(options, destination) : pino(options);
}
