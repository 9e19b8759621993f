/**
 * A private JS build of the emitter for the benchmark: every .ts file of src/ and machines/
 * transpiled one to one by esbuild (line structure kept, so CPU profiles point at real lines),
 * into bench-results/build/ (ignored by git, eslint and prettier). Unlike `npm run build`, it
 * never touches dist/, and it works while other files fail to type-check.
 * Returns undefined when esbuild (a dependency of tsx) cannot be loaded.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...tsFiles(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

export async function buildEmitter(repo: string, outDir: string): Promise<string | undefined> {
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch {
    return undefined;
  }
  rmSync(outDir, { recursive: true, force: true });
  await esbuild.build({
    entryPoints: [...tsFiles(join(repo, 'src')), ...tsFiles(join(repo, 'machines'))],
    outdir: outDir,
    outbase: repo,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    bundle: false,
    sourcemap: false,
    logLevel: 'silent',
  });
  return join(outDir, 'src', 'bin.js');
}
