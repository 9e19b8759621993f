import { ConfigError } from '../config.js';
import { CommandError, EXIT_CONFIG, EXIT_FAILED } from './common.js';
import { dlqCommand } from './dlq.js';
import { spoolCommand } from './spool.js';

/** The operator commands: `dlq ...` and `spool ...`. Errors become one stderr line and an exit code. */

export async function runOperatorCommand(
  command: 'dlq' | 'spool',
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  try {
    return command === 'dlq' ? await dlqCommand(args, env) : await spoolCommand(args, env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`batch-emitter: invalid configuration: ${error.message}\n`);
      return EXIT_CONFIG;
    }
    if (error instanceof CommandError) {
      process.stderr.write(`batch-emitter: ${error.message}\n`);
      return error.exitCode;
    }
    process.stderr.write(`batch-emitter: ${command} failed: ${(error as Error).message}\n`);
    return EXIT_FAILED;
  }
}
