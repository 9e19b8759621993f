import { ConfigError } from '../config/index.js';
import { CommandError, complain, EXIT_CONFIG, EXIT_FAILED, redactOutput } from './common.js';
import { dlqCommand } from './dlq.js';
import { spoolCommand } from './spool.js';

/** The operator commands: `dlq ...` and `spool ...`. Errors become one stderr line and an exit code. */

export async function runOperatorCommand(
  command: 'dlq' | 'spool',
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  redactOutput(env);
  try {
    return command === 'dlq' ? await dlqCommand(args, env) : await spoolCommand(args, env);
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
