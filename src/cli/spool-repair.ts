import { join } from 'node:path';
import { decodeBody } from '../spool/batch-codec.js';
import { checkSpool, repairSpool, type RepairCheck } from '../spool/repair.js';
import {
  CommandError,
  EXIT_FAILED,
  EXIT_OK,
  openFailure,
  out,
  parseArgs,
  spoolDirFromEnv,
  withSpool,
} from './common.js';

/**
 * `batch-emitter spool repair [--yes]`: for a spool LevelDB refuses to open. The dry run says
 * whether it is damaged and what repairing costs; --yes repairs, then opens it and says what it
 * holds. Records that do not decode afterwards are left for the emitter to quarantine at start.
 */

const USAGE = 'batch-emitter spool repair [--yes]';

async function check(dir: string): Promise<RepairCheck> {
  try {
    return await checkSpool(dir);
  } catch (error) {
    throw openFailure(dir, error);
  }
}

export async function repairCommand(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { positional, flags } = parseArgs(args, { flags: ['--yes'] }, USAGE);
  if (positional.length > 0) throw new CommandError(`unexpected argument ${positional[0]}; usage: ${USAGE}`);
  const dir = spoolDirFromEnv(env);
  const found = await check(dir);
  if (!found.damaged) {
    out(`spool ${dir} opens: nothing to repair`);
    return EXIT_OK;
  }
  out(found.reason);
  if (!flags.has('--yes')) {
    out(
      'repair rebuilds the index from the data files left; records that were only in missing files are gone for good',
      'dry run: nothing changed; add --yes to repair',
    );
    return EXIT_FAILED;
  }
  const setAside = await repairSpool(dir);
  return withSpool(dir, async (spool) => {
    const { batches, deadLetters, quarantined } = await spool.stats();
    const problems = await spool.batches.verify(async (state, body) => {
      await decodeBody(state, body);
    });
    out(
      `repaired spool ${dir}: it holds ${batches} batch(es), ${deadLetters} dead letter(s), ${quarantined} quarantined batch(es)`,
    );
    if (setAside.length > 0)
      out(`files LevelDB could not use are in ${join(dir, 'lost')}: ${setAside.join(', ')}`);
    if (problems.length > 0)
      out(
        `${problems.length} batch record(s) do not decode (e.g. a state without its body): the emitter quarantines them at its next start; \`batch-emitter spool verify\` lists them`,
      );
    return EXIT_OK;
  });
}
