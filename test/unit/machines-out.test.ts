import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { machinesCommand } from '../../src/cli/machines.js';
import { CommandError } from '../../src/cli/common.js';
import { tempDir } from '../../harness/workload.js';

/**
 * `batch-emitter machines --out DIR`: one `.mmd` per machine, each a Mermaid document of its own.
 * Checked by structure (the `mermaid` package needs a DOM to parse in Node): one front matter
 * block, then the diagram keyword, once; the same diagram the command prints.
 */

const printed: string[] = [];
vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
  printed.push(String(chunk));
  return true;
});
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  printed.length = 0;
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function outDir(): Promise<string> {
  const dir = await tempDir('machines-out');
  cleanups.push(() => dir.remove());
  return dir.path;
}

/** What keeps a document pasteable on its own: exactly one front matter, then the keyword, once. */
function expectOneDiagram(text: string): void {
  const lines = text.split('\n');
  expect(lines[0]).toBe('---');
  const close = lines.indexOf('---', 1);
  expect(close).toBeGreaterThan(0);
  expect(lines.slice(1, close).every((line) => /^[a-zA-Z]+: \S/.test(line))).toBe(true);
  expect(lines.filter((line) => line === '---')).toHaveLength(2);
  expect(lines[close + 1]).toBe('stateDiagram-v2');
  expect(lines.filter((line) => /^\s*stateDiagram/.test(line))).toHaveLength(1);
  expect(text.endsWith('\n')).toBe(true);
}

function printedDiagrams(args: string[]): string[] {
  expect(machinesCommand(args)).toBe(0);
  const text = printed.splice(0).join('');
  return text.split(/\n(?=---\ntitle: )/).map((doc) => (doc.endsWith('\n') ? doc : `${doc}\n`));
}

describe('batch-emitter machines --out DIR', () => {
  it('writes one .mmd per machine, each a single diagram, the same as printed', async () => {
    const dir = join(await outDir(), 'new', 'charts');
    expect(machinesCommand(['--out', dir])).toBe(0);
    const names = ['buffer', 'delivery', 'breaker', 'limiter'];
    expect(printed.join('').trimEnd().split('\n')).toEqual(names.map((n) => join(dir, `${n}.mmd`)));
    printed.length = 0;
    expect(readdirSync(dir).sort()).toEqual(names.map((n) => `${n}.mmd`).sort());
    const asPrinted = printedDiagrams([]);
    names.forEach((name, i) => {
      const text = readFileSync(join(dir, `${name}.mmd`), 'utf8');
      expectOneDiagram(text);
      expect(text).toMatch(new RegExp(`^---\\ntitle: ${name} — `));
      expect(text).toBe(asPrinted[i]);
    });
    // the printed form, all four together, is exactly what cannot be pasted as one
    expect(asPrinted.join('\n').match(/^---$/gm)).toHaveLength(8);
  });

  it('--machine picks the files; an existing file of the same name is replaced', async () => {
    const dir = await outDir();
    writeFileSync(join(dir, 'breaker.mmd'), 'stale');
    expect(machinesCommand(['--machine', 'breaker,limiter', '--out', dir])).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['breaker.mmd', 'limiter.mmd']);
    expectOneDiagram(readFileSync(join(dir, 'breaker.mmd'), 'utf8'));
  });

  it('refuses --out with --format json (exit 2) and names a path it cannot write (exit 1)', async () => {
    const dir = await outDir();
    const refusal = (args: string[]) => {
      try {
        machinesCommand(args);
      } catch (error) {
        if (error instanceof CommandError) return { code: error.exitCode, message: error.message };
        throw error;
      }
      throw new Error('expected a CommandError');
    };
    expect(refusal(['--format', 'json', '--out', dir])).toEqual({
      code: 2,
      message: '--out writes Mermaid files, not JSON',
    });
    const file = join(dir, 'a-file');
    writeFileSync(file, '');
    expect(refusal(['--machine', 'buffer', '--out', file])).toMatchObject({
      code: 1,
      message: expect.stringMatching(new RegExp(`^cannot write ${file}/buffer\\.mmd: `)),
    });
    expect(readdirSync(dir)).toEqual(['a-file']);
  });
});
