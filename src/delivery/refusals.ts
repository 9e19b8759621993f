import type { Outcome } from '../../machines/outcome.js';
import type { DestinationRejecting } from '../observe/status.js';
import type { Logger } from '../util/logger.js';

/**
 * Whether the destination refuses every batch (`destination_rejecting` on /ready): a count of
 * permanent refusals since the last success. It only watches outcomes; it never holds a batch back.
 */

const REJECTING_AFTER = 5;

export class Refusals {
  private consecutive = 0;
  private lastStatus?: number;

  constructor(
    private readonly logger: Logger,
    /** consecutive permanent refusals (no success between) after which the destination counts as rejecting */
    private readonly after = REJECTING_AFTER,
  ) {}

  /** Set while the last `after` or more outcomes were refusals, until a success. */
  rejecting(): DestinationRejecting | undefined {
    if (this.consecutive < this.after) return undefined;
    return { consecutive: this.consecutive, lastStatus: this.lastStatus };
  }

  note(outcome: Outcome): void {
    if (outcome.kind === 'success') {
      if (this.rejecting()) this.logger.info('the destination accepts batches again');
      this.consecutive = 0;
    } else if (outcome.kind === 'permanent' && outcome.status > 0) {
      // status 0: not an answer of the destination (the batch left the spool meanwhile)
      this.consecutive += 1;
      this.lastStatus = outcome.status;
      if (this.consecutive === this.after) {
        this.logger.error(
          { consecutive: this.consecutive, status: outcome.status },
          'the destination refuses every batch: each is dead-lettered; /ready fails until one is accepted',
        );
      }
    }
  }
}
