import { crc32 } from 'node:zlib';
import { z } from 'zod';
import { SEAL_TRIGGERS } from '../../machines/buffer.js';

/**
 * The state record of a spooled batch (the `s` store), and the checks that decide it can be
 * trusted. It never touches the database: the spool's modules hand it what they read.
 */

const BatchStateSchema = z.object({
  v: z.literal(1),
  id: z.string(),
  createdAt: z.string(),
  itemCount: z.number().int().nonnegative(),
  rawBytes: z.number().int().nonnegative(),
  storedBytes: z.number().int().nonnegative(),
  encoding: z.enum(['gzip', 'identity']),
  subjects: z.array(z.string()),
  attempts: z.number().int().nonnegative(),
  /** epoch ms before which no attempt is made (backoff or parking survive a restart) */
  notBefore: z.number().optional(),
  parked: z.boolean().optional(),
  lastError: z.string().optional(),
  parentId: z.string().optional(),
  /** why the buffer sealed it (machines/buffer.ts SEAL_TRIGGERS); absent for split halves and older records */
  trigger: z.enum(SEAL_TRIGGERS).optional(),
  /** when its first item arrived (ISO 8601): its items were received between this and createdAt */
  openedAt: z.string().optional(),
  /** CRC-32 of the stored body: a body overwritten on disk is quarantined, never sent */
  crc32: z.number().int().optional(),
});
export type BatchState = z.output<typeof BatchStateSchema>;

/** What delivery may change in a state record (see `Batches.patchState`). */
export type BatchStatePatch = Partial<Pick<BatchState, 'attempts' | 'notBefore' | 'parked' | 'lastError'>>;

export function decodeState(text: string): BatchState | undefined {
  try {
    const parsed = BatchStateSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** The state record stored under `id`, when it decodes and names that id (what the spool counts). */
export function stateOf(id: string, text: string): BatchState | undefined {
  const state = decodeState(text);
  return state?.id === id ? state : undefined;
}

/** Why a stored body cannot be trusted, or undefined when it can. */
export function bodyProblem(state: BatchState, body: Buffer | undefined): string | undefined {
  if (body === undefined) return 'body missing';
  if (state.crc32 !== undefined && crc32(body) !== state.crc32) return 'body checksum mismatch';
  return undefined;
}
