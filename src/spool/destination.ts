import { createHash } from 'node:crypto';
import { isCredentialParam } from '../config/secret-values.js';
import type { SpoolHandle } from './handle.js';
import { commit, put, type Stores } from './stores.js';

/**
 * The destination a spool is bound to: every batch in it was accepted for that endpoint, so a
 * start aimed at another one is refused until an operator rebinds the spool on purpose
 * (`batch-emitter spool retarget --yes`). Recorded as origin and path, never credentials; a query
 * (`?tenant=a`) selects another destination too, so its parameters are recorded as a digest that
 * tells two queries apart without showing either. Credential-named parameters (`?api_key=`) are
 * left out of it: rotating a key does not change where the batches go.
 */

const BOUND_TO = 'destination';

/**
 * `https://ingest.example.com/v1/batch` for a destination URL: origin and path, and with a query
 * `https://ingest.example.com/v1/batch?(query sha256:1f0c...)`, the digest of its sorted parameters.
 */
export function destinationKey(url: string): string {
  const u = new URL(url);
  const base = `${u.origin}${u.pathname}`;
  const selecting = new URLSearchParams([...u.searchParams].filter(([name]) => !isCredentialParam(name)));
  if (selecting.size === 0) return base;
  selecting.sort();
  const digest = createHash('sha256').update(selecting.toString()).digest('hex').slice(0, 16);
  return `${base}?(query sha256:${digest})`;
}

export class SpoolDestination {
  constructor(
    private readonly handle: SpoolHandle,
    private readonly stores: Stores,
  ) {}

  /** The recorded destination; undefined for a new spool or one written before it was recorded. */
  recorded(): Promise<string | undefined> {
    return this.handle.run(async () => this.stores.meta.get(BOUND_TO), { retry: true });
  }

  /** Bind the spool to a destination's `destinationKey` (synced: a crash must not lose the binding). */
  record(key: string): Promise<void> {
    const op = put(this.stores.meta, BOUND_TO, key);
    return this.handle.run(() => commit(this.handle.db, [op], { sync: true }), { retry: true });
  }
}

/** A start aimed at another destination than the spool's batches were accepted for. */
export class SpoolDestinationError extends Error {
  readonly code = 'SPOOL_DESTINATION_MISMATCH';
  constructor(
    readonly dir: string,
    readonly recorded: string,
    readonly configured: string,
  ) {
    super(
      `spool ${dir} is bound to ${recorded}, not to the configured destination ${configured}: ` +
        `its batches were accepted for ${recorded}. To send them to ${configured}, stop the emitter ` +
        'and run `batch-emitter spool retarget --yes` with the new TRANSMITTER_DESTINATION_URL ' +
        `(and the same TRANSMITTER_SPOOL_DIR); or configure ${recorded} again`,
    );
    this.name = 'SpoolDestinationError';
  }
}
