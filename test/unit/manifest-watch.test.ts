import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../harness/workload.js';
import { ManifestWatch, missingManifest } from '../../src/spool/manifest-watch.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

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

  it('says nothing while CURRENT is gone or names no manifest (its own check reports those)', async () => {
    const dir = await spoolLike();
    const watch = new ManifestWatch(dir);
    await writeFile(join(dir, 'CURRENT'), 'not a manifest\n');
    expect(await watch.missing()).toBeUndefined();
    await rm(join(dir, 'CURRENT'));
    expect(await watch.missing()).toBeUndefined();
  });
});
