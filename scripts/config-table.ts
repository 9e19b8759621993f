import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { configTable } from '../src/config/index.js';

/**
 * `npm run docs:config`: print the README's Configuration table, generated from the option table;
 * `-- --write` puts it into README.md in place of the table there. Touches nothing else.
 */

const README = fileURLToPath(new URL('../README.md', import.meta.url));

/** Where the table under "## Configuration" starts and ends (line indexes, end exclusive). */
function tableLines(lines: string[]): { start: number; end: number } {
  const heading = lines.indexOf('## Configuration');
  const start = lines.findIndex((line, i) => i > heading && line.startsWith('|'));
  if (heading < 0 || start < 0) throw new Error('README.md: no table under "## Configuration"');
  const after = lines.findIndex((line, i) => i > start && !line.startsWith('|'));
  return { start, end: after < 0 ? lines.length : after };
}

/** The Configuration table of a README text. */
export function configTableIn(readme: string): string {
  const lines = readme.split('\n');
  const { start, end } = tableLines(lines);
  return lines.slice(start, end).join('\n');
}

export function withConfigTable(readme: string, table: string): string {
  const lines = readme.split('\n');
  const { start, end } = tableLines(lines);
  return [...lines.slice(0, start), table, ...lines.slice(end)].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { write: { type: 'boolean', default: false } } });
  const table = configTable();
  if (!values.write) {
    process.stdout.write(`${table}\n`);
    return;
  }
  await writeFile(README, withConfigTable(await readFile(README, 'utf8'), table));
  process.stdout.write('README.md: Configuration table written\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
