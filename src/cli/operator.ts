import { ConfigError } from '../config/index.js';
import { CommandError, complain, EXIT_CONFIG, EXIT_FAILED, redactOutput } from './common.js';
import { dlqCommand } from './dlq.js';
import { ledgerCommand } from './ledger.js';
import { spoolCommand } from './spool.js';
import { traceCommand } from './trace.js';

/** The operator commands: `dlq`, `spool`, `ledger`, `trace`. Errors become one stderr line and an exit code. */

const COMMANDS = { dlq: dlqCommand, spool: spoolCommand, ledger: ledgerCommand, trace: traceCommand };
export type OperatorCommand = keyof typeof COMMANDS;

export function isOperatorCommand(name: string): name is OperatorCommand {
  return Object.hasOwn(COMMANDS, name);
}

export async function runOperatorCommand(
  command: OperatorCommand,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  redactOutput(env);
  try {
    return await COMMANDS[command](args, env);
  } catch (error) {
    if (error instanceof ConfigError) {
      complain(`invalid configuration: ${error.message}`);
      return EXIT_CONFIG;
    }
    if (error instanceof CommandError) {
      complain(error.message);
      return error.exitCode;
    }
    complain(`${command} failed: ${(error as Error).message}`);
    return EXIT_FAILED;
  }
}
