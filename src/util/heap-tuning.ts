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
 * JavaScript runs. By default glibc gives each thread that allocates its own arena (up to 8 per
 * core); LevelDB's and zlib's work on libuv's pool threads spreads freed batch-sized blocks over
 * those arenas, which keep them: 2 arenas cut the bench's peak RSS by ~20 MB at the same CPU.
 */
export const MALLOC_TUNING: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };
