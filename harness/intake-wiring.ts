import { Redelivery } from '../src/ingress/redelivery.js';
import { Intake, type IntakeOptions } from '../src/intake/intake.js';
import { itemFromEvent } from '../src/model.js';
import { EmitterEvents } from '../src/observe/events.js';
import { Spool } from '../src/spool/spool.js';
import { createLogger } from '../src/util/logger.js';
import { tempDir } from './workload.js';

/**
 * An intake's options as the tests take them: batches of `maxItems` (1 MiB of body), never sealed by
 * time, no compression, a spool limit of 1 GiB, durable batches left in the spool; `overrides` win.
 */
export function intakeOptions(
  spool: Spool,
  overrides: Partial<IntakeOptions> & Pick<IntakeOptions, 'maxItems'>,
): IntakeOptions {
  return {
    spool,
    logger: createLogger('silent'),
    events: new EmitterEvents(),
    probeId: 'p',
    runId: 'r',
    maxBytes: 1 << 20,
    intervalMs: 60_000,
    compression: 'none',
    spoolMaxBytes: 1 << 30,
    onDurable: () => undefined,
    ...overrides,
  };
}

/**
 * A spool on a temp dir with an intake whose sealed sequences a Redelivery index keeps, wired as
 * the emitter wires them (no delivery: durable batches stay in the spool); `close` closes both and
 * removes the directory.
 */
export async function intakeWithRedelivery(
  maxItems: number,
): Promise<{ intake: Intake; spool: Spool; redelivery: Redelivery; close(): Promise<void> }> {
  const dir = await tempDir('redelivery');
  const spool = await Spool.open(dir.path);
  const redelivery = new Redelivery(spool);
  const intake = new Intake(intakeOptions(spool, { maxItems, seqTracker: redelivery }));
  const close = async () => {
    await intake.close();
    await spool.close();
    await dir.remove();
  };
  return { intake, spool, redelivery, close };
}

/** Event `n` of approved.x as the ingress would build it (stream sequence n). */
export const approvedEvent = (n: number) =>
  itemFromEvent({
    subject: 'approved.x',
    seq: n,
    msg_id: `m${n}`,
    published_at: '2026-01-01T00:00:00.000Z',
    data: { n },
  });
