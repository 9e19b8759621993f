import { rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { tempDir } from '../../harness/workload.js';
import { ManifestWatch, missingManifest } from '../../src/spool/manifest-watch.js';

// a coarse clock (kernels before 6.13, some file systems) cannot be had here: a stat taken once
// is handed out again for the paths put in `frozen`, as such a clock would show a rewrite
const frozen = vi.hoisted(() => new Map<string, object>());
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  const stat = (path: string, options?: { bigint?: boolean }) =>
    frozen.has(path) ? Promise.resolve(frozen.get(path)) : real.stat(path, options);
  return { ...real, stat };
});

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  frozen.clear();
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** CURRENT's stat from now on, as a clock that does not move within a tick reports it. */
async function freezeCurrent(dir: string, ageNs = 0n): Promise<void> {
  const now = await stat(join(dir, 'CURRENT'), { bigint: true });
  frozen.set(join(dir, 'CURRENT'), { ino: now.ino, size: now.size, ctimeNs: now.ctimeNs - ageNs });
}

/** A directory whose CURRENT names MANIFEST-000001, which is there. */
async function spoolLike(): Promise<string> {
  const dir = await tempDir('manifest-watch');
  cleanups.push(() => dir.remove());
  await writeFile(join(dir.path, 'MANIFEST-000001'), 'x');
  await writeFile(join(dir.path, 'CURRENT'), 'MANIFEST-000001\n');
  return dir.path;
}

describe('ManifestWatch', () => {
  it('finds the named manifest there, then gone', async () => {
    const dir = await spoolLike();
    const watch = new ManifestWatch(dir);
    expect(await watch.missing()).toBeUndefined();
    await rm(join(dir, 'MANIFEST-000001'));
    expect(await watch.missing()).toBe('MANIFEST-000001');
    expect(await missingManifest(dir)).toBe('MANIFEST-000001');
  });

  it('reads CURRENT again when it is replaced by a rename, as LevelDB does', async () => {
    const dir = await spoolLike();
    const watch = new ManifestWatch(dir);
    expect(await watch.missing()).toBeUndefined();
    await writeFile(join(dir, 'CURRENT.tmp'), 'MANIFEST-000002\n');
    await rename(join(dir, 'CURRENT.tmp'), join(dir, 'CURRENT'));
    expect(await watch.missing()).toBe('MANIFEST-000002');
  });

  it('reads CURRENT again when it is rewritten in place to the same size', async () => {
    const dir = await spoolLike();
    const watch = new ManifestWatch(dir);
    expect(await watch.missing()).toBeUndefined();
    await writeFile(join(dir, 'CURRENT'), 'MANIFEST-000003\n');
    expect(await watch.missing()).toBe('MANIFEST-000003');
  });

  it('reads CURRENT again while it is fresh: a rewrite within one tick of a coarse clock keeps its stat', async () => {
    const dir = await spoolLike();
    await freezeCurrent(dir);
    const watch = new ManifestWatch(dir);
    expect(await watch.missing()).toBeUndefined();
    await writeFile(join(dir, 'CURRENT'), 'MANIFEST-000003\n');
    expect(await watch.missing()).toBe('MANIFEST-000003');
  });

  it('takes the stat for a read once CURRENT has been unchanged for a second when looked at', async () => {
    const dir = await spoolLike();
    await freezeCurrent(dir, 2_000_000_000n);
    const watch = new ManifestWatch(dir);
    expect(await watch.missing()).toBeUndefined();
    // unseen only because the frozen stat hides it: a real change after a second has a later time
    await writeFile(join(dir, 'CURRENT'), 'MANIFEST-000003\n');
    expect(await watch.missing()).toBeUndefined();
    frozen.clear();
    expect(await watch.missing()).toBe('MANIFEST-000003');
  });

  it('says nothing while CURRENT is gone or names no manifest (its own check reports those)', async () => {
    const dir = await spoolLike();
    const watch = new ManifestWatch(dir);
    await writeFile(join(dir, 'CURRENT'), 'not a manifest\n');
    expect(await watch.missing()).toBeUndefined();
    await rm(join(dir, 'CURRENT'));
    expect(await watch.missing()).toBeUndefined();
  });
});
