import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/**
 * The package as a user gets it: `npm pack` of this checkout (its prepack script runs
 * `npm run build`), installed into a fresh ESM project in a temp dir, as `npm install <tarball>`.
 */

const run = promisify(execFile);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const REPO = fileURLToPath(new URL('..', import.meta.url));
// `npm pack` rebuilds dist/ in place: two test files packing at once would corrupt each other's build
const PACK_LOCK = join(tmpdir(), `batch-emitter-pack-${REPO.replace(/\W+/g, '_')}.lock`);

export interface PackedPackage {
  /** the tarball `npm pack` wrote */
  readonly tarball: string;
  /** paths inside the tarball */
  readonly files: string[];
}

/** Packs the checkout into `dir`, one packer at a time across test processes. */
export async function packInto(dir: string): Promise<PackedPackage> {
  await acquire(PACK_LOCK);
  try {
    const packed = await run(npm, ['pack', '--pack-destination', dir, '--json'], {
      cwd: REPO,
      maxBuffer: 64 * 1024 * 1024,
    });
    const { filename, files } = (
      JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>
    )[0]!;
    return { tarball: join(dir, filename), files: files.map((f) => f.path) };
  } finally {
    await rm(PACK_LOCK, { recursive: true, force: true });
  }
}

/** A fresh `"type": "module"` project at `project` with the tarball installed. */
export async function installInto(project: string, tarball: string): Promise<void> {
  await mkdir(project, { recursive: true });
  await writeFile(
    join(project, 'package.json'),
    JSON.stringify({ name: 'embed-smoke', version: '1.0.0', private: true, type: 'module' }),
  );
  await run(npm, ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: project,
    maxBuffer: 64 * 1024 * 1024,
  });
}

/** A directory lock (mkdir is atomic); one left by a dead process is taken over. */
async function acquire(lock: string, timeoutMs = 300_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      await mkdir(lock);
      await writeFile(join(lock, 'pid'), String(process.pid));
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (!(await holderAlive(lock))) await rm(lock, { recursive: true, force: true });
    else if (Date.now() > until) throw new Error(`${lock}: still held after ${timeoutMs} ms`);
    else await delay(250);
  }
}

async function holderAlive(lock: string): Promise<boolean> {
  const pid = Number(await readFile(join(lock, 'pid'), 'utf8').catch(() => ''));
  if (!pid) return true; // being created right now
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
