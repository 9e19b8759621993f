import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The manifest (LevelDB's index of its files) that a spool's `CURRENT` names, when that file is
 * gone: a running LevelDB goes on writing to the deleted one, and no later open finds the data
 * files. Undefined when it is there, or when `CURRENT` names none (its own check says so).
 */
export async function missingManifest(dir: string): Promise<string | undefined> {
  return manifestIfMissing(dir, await namedManifest(join(dir, 'CURRENT')));
}

async function namedManifest(current: string): Promise<string | undefined> {
  const named = await readFile(current, 'utf8').then(
    (text) => text.trim(),
    () => undefined,
  );
  return named !== undefined && /^MANIFEST-\d+$/.test(named) ? named : undefined;
}

async function manifestIfMissing(dir: string, named: string | undefined): Promise<string | undefined> {
  if (named === undefined) return undefined;
  const present = await stat(join(dir, named)).then(
    (s) => s.isFile(),
    () => false,
  );
  return present ? undefined : named;
}

/**
 * A file's change time moves once per clock tick on kernels before 6.13 and on some file systems:
 * a rewrite within a tick of the last change keeps it. So a stat stands for a read only once
 * `CURRENT` has been unchanged for a while when it is looked at; a later change then has a later time.
 */
const SETTLED_NS = 1_000_000_000n;

/**
 * `missingManifest` for the look every sealed batch pays: `CURRENT` is read again only when it is
 * another file or was written since (LevelDB replaces it by a rename, at open), otherwise its
 * name is taken from the last read: one stat instead of an open, a read and a close.
 */
export class ManifestWatch {
  private last?: { ino: bigint; size: bigint; ctimeNs: bigint; named: string | undefined };

  constructor(private readonly dir: string) {}

  async missing(): Promise<string | undefined> {
    const current = join(this.dir, 'CURRENT');
    const lookedAtNs = BigInt(Date.now()) * 1_000_000n;
    const now = await stat(current, { bigint: true }).catch(() => undefined);
    if (now === undefined) return undefined;
    const last = this.last;
    const same = last?.ino === now.ino && last.size === now.size && last.ctimeNs === now.ctimeNs;
    const named = same ? last.named : await namedManifest(current);
    // read after the stat: a change in between shows as another stat next time, and is read then
    const settled = lookedAtNs - now.ctimeNs >= SETTLED_NS;
    if (!same)
      this.last = settled ? { ino: now.ino, size: now.size, ctimeNs: now.ctimeNs, named } : undefined;
    return manifestIfMissing(this.dir, named);
  }
}
