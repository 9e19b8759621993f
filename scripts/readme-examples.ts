import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/**
 * `npm run docs:examples`: the README quotes files of examples/ (run by npm test), each in the
 * fenced block after a marker line `<!-- examples/<file> -->` (and a blank line). Without arguments it checks
 * that every quoted block equals its file (exit 1 naming the ones that differ); `-- --write` copies
 * the files into their blocks. Touches nothing else.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const README = join(ROOT, 'README.md');
const MARKER = /^<!-- (examples\/[\w.-]+) -->$/;

export interface QuotedExample {
  /** path of the quoted file, relative to the repository (examples/...) */
  file: string;
  /** the block's text between its fences */
  text: string;
}

interface Block extends QuotedExample {
  /** line indexes of the opening and the closing fence */
  open: number;
  close: number;
}

function blocks(lines: string[]): Block[] {
  const found: Block[] = [];
  lines.forEach((line, i) => {
    const file = MARKER.exec(line)?.[1];
    if (!file) return;
    // prettier puts a blank line between the marker and the fence
    const open = lines[i + 1] === '' ? i + 2 : i + 1;
    const close = lines.findIndex((l, j) => j > open && l === '```');
    if (!lines[open]?.startsWith('```') || close < 0) {
      throw new Error(`README.md line ${i + 1}: ${file}: no fenced block right after the marker`);
    }
    found.push({ file, open, close, text: lines.slice(open + 1, close).join('\n') });
  });
  return found;
}

/** The examples the README quotes, in order. */
export function quotedExamples(readme: string): QuotedExample[] {
  return blocks(readme.split('\n')).map(({ file, text }) => ({ file, text }));
}

/** The README with each quoted block replaced by its file's text (`read` gives a file's text). */
export function withExamples(readme: string, read: (file: string) => string): string {
  const lines = readme.split('\n');
  for (const block of blocks(lines).reverse()) {
    const text = read(block.file).replace(/\n$/, '');
    lines.splice(block.open + 1, block.close - block.open - 1, ...text.split('\n'));
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { write: { type: 'boolean', default: false } } });
  const readme = await readFile(README, 'utf8');
  const files = new Map<string, string>();
  for (const { file } of quotedExamples(readme)) files.set(file, await readFile(join(ROOT, file), 'utf8'));
  const updated = withExamples(readme, (file) => files.get(file)!);
  if (values.write) {
    await writeFile(README, updated);
    process.stdout.write(`README.md: ${files.size} examples written\n`);
    return;
  }
  const before = quotedExamples(readme);
  const stale = quotedExamples(updated).filter((q, i) => q.text !== before[i]!.text);
  for (const { file } of stale)
    process.stderr.write(`README.md: the block of ${file} differs from the file\n`);
  process.exitCode = stale.length > 0 ? 1 : 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
