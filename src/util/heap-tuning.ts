import { setFlagsFromString } from 'node:v8';

/**
 * V8 grows the old generation up to 4x what survived the last full GC when collections are cheap,
 * as they are here: at full speed the emitter holds ~30 MB but let the heap reach ~150 MB of
 * promoted garbage (batches and acks live just long enough to be promoted). A growth of 1.5x keeps
 * peak RSS bounded for a few more (short) full collections. The V8 flag is read at every GC, so
 * setting it at start-up takes effect; a value given on the command line wins.
 */
export const HEAP_GROWING_FLAG = `--heap-growing-percent=50`;

export function boundHeapGrowth(
  execArgv: readonly string[] = process.execArgv,
  setFlags: (flags: string) => void = setFlagsFromString,
): boolean {
  // V8 takes either spelling: --heap-growing-percent or --heap_growing_percent
  if (execArgv.some((arg) => arg.replaceAll('_', '-').startsWith('--heap-growing-percent'))) return false;
  setFlags(HEAP_GROWING_FLAG);
  return true;
}

/**
 * The C heap, set where the process is started (deploy/, the bench): glibc reads it before any
 * JavaScript runs.
 *
 * MALLOC_ARENA_MAX: by default glibc gives each thread that allocates its own arena (up to 8 per
 * core); LevelDB's and zlib's work on libuv's pool threads spreads freed batch-sized blocks over
 * those arenas, which keep them: 2 arenas cut the bench's peak RSS by ~20 MB at the same CPU.
 *
 * MALLOC_MMAP_THRESHOLD_: a block of 32 KB or more gets pages of its own, returned when it is
 * freed. Without it, glibc raises the threshold to the largest block freed so far (a batch body,
 * a 64 KB socket read), after which such blocks come from the arenas, which only give memory back
 * from their top: a burst of native allocations at full speed (V8's GC helper threads took ~28 MB
 * for a moment in the bench's first seconds) stayed in an arena as 35-40 MB of free but resident
 * memory for the rest of the run (malloc_info); with 32 KB that burst's blocks are unmapped when
 * freed and the arenas stay under 10 MB. A fixed threshold also keeps glibc's trim threshold from
 * growing with it.
 */
export const MALLOC_TUNING: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '32768',
};
