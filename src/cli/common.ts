import { z } from 'zod';
import { ConfigError, refuseUnknownVariables, secretsOfEnv } from '../config/index.js';
import { Redactor } from '../util/redact.js';
import { Spool, SpoolError } from '../spool/spool.js';

/**
 * What the operator commands (`batch-emitter dlq ...`, `batch-emitter spool ...`) share: the one
 * variable they read (TRANSMITTER_SPOOL_DIR), opening an existing spool without creating or
 * repairing anything, argument parsing, and the exit codes.
 */

export const EXIT_OK = 0;
/** the command could not do what was asked: unknown id, no spool, spool in use, bad arguments */
export const EXIT_FAILED = 1;
export const EXIT_CONFIG = 2;
/** spool verify: some record does not decode */
export const EXIT_CORRUPT = 3;

/** A failure to report as one line on stderr, with its exit code. */
export class CommandError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILED,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}

const SpoolDirSchema = z
  .string()
  .refine((v) => v.trim().length > 0, { error: 'expected a directory path' })
  .refine((v) => !v.includes('\0'), { error: 'expected a directory path' });

/**
 * TRANSMITTER_SPOOL_DIR (default ./spool), validated like the service does; nothing else is read,
 * so the commands work without a destination URL. Throws ConfigError on a bad value.
 */
export function spoolDirFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  refuseUnknownVariables(env);
  const name = 'TRANSMITTER_SPOOL_DIR';
  const raw = env[name] === '' || env[name] === undefined ? './spool' : env[name];
  const parsed = SpoolDirSchema.safeParse(raw);
  if (!parsed.success) {
    const shown = raw.length > 60 ? `${raw.slice(0, 60)}...` : raw;
    throw new ConfigError(
      name,
      `is ${JSON.stringify(shown)}; ${parsed.error.issues[0]?.message ?? 'invalid'}`,
    );
  }
  return parsed.data;
}

/** A spool that would not open, as the one line the operator reads. */
export function openFailure(dir: string, error: unknown): CommandError {
  if (error instanceof SpoolError && error.code === 'SPOOL_LOCKED') {
    return new CommandError(`spool ${dir} is in use by a running emitter; stop it first`);
  }
  if (error instanceof SpoolError && error.code === 'SPOOL_NOT_FOUND') {
    return new CommandError(`no spool at ${dir}`);
  }
  return new CommandError((error as Error).message);
}

/** Open the existing spool at `dir`, run `fn`, always close it. Open failures become CommandErrors. */
export async function withSpool<T>(dir: string, fn: (spool: Spool) => Promise<T>): Promise<T> {
  let spool: Spool;
  try {
    spool = await Spool.openExisting(dir);
  } catch (error) {
    throw openFailure(dir, error);
  }
  try {
    return await fn(spool);
  } finally {
    await spool.close();
  }
}

/** A subcommand whose arguments are checked: what it does on the open spool, with its exit code. */
export type Prepared = (spool: Spool) => Promise<number>;
/** A subcommand's preparation: its arguments, and the environment for the few that read more than the spool dir. */
export type Subcommands = Record<string, (args: string[], env: NodeJS.ProcessEnv) => Prepared>;

/**
 * Run the subcommand `args[0]` of `command` on the spool of TRANSMITTER_SPOOL_DIR. Its arguments
 * are checked before the spool is opened, so a mistyped command never waits for a locked spool.
 */
export async function runOnSpool(
  command: string,
  subcommands: Subcommands,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<number> {
  const [sub, ...rest] = args;
  const prepare = sub === undefined ? undefined : subcommands[sub];
  if (!prepare) {
    throw new CommandError(
      sub === undefined
        ? `${command} needs a command: ${alternatives(Object.keys(subcommands))}; see batch-emitter --help`
        : `unknown ${command} command ${JSON.stringify(sub)}; see batch-emitter --help`,
    );
  }
  const run = prepare(rest, env);
  return withSpool(spoolDirFromEnv(env), run);
}

/** `a, b or c` */
function alternatives(names: string[]): string {
  const last = names.at(-1) ?? '';
  return names.length > 1 ? `${names.slice(0, -1).join(', ')} or ${last}` : last;
}

export interface ParsedArgs {
  positional: string[];
  flags: Set<string>;
  values: Map<string, string>;
}

/**
 * Parse `args` against the allowed boolean flags and value options (`--reason x` or
 * `--reason=x`). Anything else starting with `--` is an error.
 */
export function parseArgs(
  args: readonly string[],
  allowed: { flags?: readonly string[]; values?: readonly string[] },
  usage: string,
): ParsedArgs {
  const flags = new Set<string>();
  const values = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    if (allowed.flags?.includes(name) && eq === -1) {
      flags.add(name);
    } else if (allowed.values?.includes(name)) {
      const value = eq === -1 ? args[++i] : arg.slice(eq + 1);
      if (value === undefined) throw new CommandError(`${name} needs a value; usage: ${usage}`);
      values.set(name, value);
    } else {
      throw new CommandError(`unknown option ${arg}; usage: ${usage}`);
    }
  }
  return { positional, flags, values };
}

export const iso = (ms: number | undefined): string | undefined =>
  ms === undefined ? undefined : new Date(ms).toISOString();

// a receiver may have echoed our headers into a dead letter's body excerpt before they were redacted
let printed = new Redactor([]);

/** From now on, scrub the secrets configured in `env` (secretsOfEnv) from everything printed. */
export function redactOutput(env: NodeJS.ProcessEnv): void {
  printed = new Redactor(secretsOfEnv(env));
}

/** Write lines to stdout. */
export function out(...lines: string[]): void {
  if (lines.length > 0) process.stdout.write(`${printed.scrub(lines.join('\n'))}\n`);
}

/** Write one `batch-emitter: ...` line to stderr. */
export function complain(line: string): void {
  process.stderr.write(`batch-emitter: ${printed.scrub(line)}\n`);
}
