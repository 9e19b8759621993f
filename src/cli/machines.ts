import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MACHINES, MACHINE_NAMES, machineGraphs } from '../observe/views/machines.js';
import { graphToMermaid } from '../observe/views/mermaid.js';
import type { StateGraph } from '../observe/views/statechart.js';
import { CommandError, EXIT_CONFIG, EXIT_OK, out, parseArgs } from './common.js';

/**
 * `batch-emitter machines [--format mermaid|json] [--machine buffer|delivery|breaker|limiter]
 * [--out DIR]`: the statecharts read from the real machine definitions. Mermaid: one titled
 * `stateDiagram-v2` document per machine, separated by a blank line, or with `--out` one
 * `<machine>.mmd` file each (a document that pastes into a Mermaid editor as it is; the printed
 * documents together do not, having one front matter each); JSON: `{ buffer, delivery, breaker,
 * limiter }` graphs. Reads no environment variable. Usage errors exit 2 with one line on stderr.
 */

export const MACHINES_USAGE = `batch-emitter machines [--format mermaid|json] [--machine ${MACHINE_NAMES.join('|')}[,...]] [--out DIR]`;

const FORMATS = ['mermaid', 'json'] as const;

function usageError(message: string): CommandError {
  return new CommandError(message, EXIT_CONFIG);
}

export function machinesCommand(args: string[]): number {
  let parsed;
  try {
    parsed = parseArgs(args, { values: ['--format', '--machine', '--out'] }, MACHINES_USAGE);
  } catch (error) {
    throw usageError((error as Error).message);
  }
  const { positional, values } = parsed;
  if (positional.length > 0)
    throw usageError(`unexpected argument ${positional[0]}; usage: ${MACHINES_USAGE}`);
  const format = values.get('--format') ?? 'mermaid';
  if (!(FORMATS as readonly string[]).includes(format)) {
    throw usageError(`--format must be mermaid or json, not ${JSON.stringify(format)}`);
  }
  const outDir = values.get('--out');
  if (outDir !== undefined && format === 'json') throw usageError('--out writes Mermaid files, not JSON');
  if (outDir?.trim() === '') throw usageError('--out needs a directory');
  const wanted = (values.get('--machine') ?? MACHINE_NAMES.join(','))
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name.length > 0);
  const unknown = wanted.find((name) => !MACHINE_NAMES.includes(name));
  if (unknown !== undefined || wanted.length === 0) {
    throw usageError(
      `--machine must name ${MACHINE_NAMES.join(', ')} (comma separated), not ${JSON.stringify(unknown ?? '')}`,
    );
  }
  const chosen = MACHINES.filter((m) => wanted.includes(m.name));
  const graphs = machineGraphs();
  if (format === 'json') {
    out(JSON.stringify(Object.fromEntries(chosen.map((m) => [m.name, graphs[m.name]])), null, 2));
  } else {
    const diagrams = chosen.map((m) => ({
      name: m.name,
      text: graphToMermaid(graphs[m.name] as StateGraph, { title: m.title }),
    }));
    if (outDir === undefined)
      out(
        diagrams
          .map((d) => d.text)
          .join('\n')
          .trimEnd(),
      );
    else for (const path of writeDiagrams(outDir, diagrams)) out(path);
  }
  return EXIT_OK;
}

/** One `<machine>.mmd` per diagram in `dir` (created if missing); the paths written. */
function writeDiagrams(dir: string, diagrams: Array<{ name: string; text: string }>): string[] {
  return diagrams.map(({ name, text }) => {
    const path = join(dir, `${name}.mmd`);
    try {
      mkdirSync(dir, { recursive: true });
      writeFileSync(path, text);
    } catch (error) {
      throw new CommandError(`cannot write ${path}: ${(error as Error).message}`);
    }
    return path;
  });
}

/** The CLI entry: usage errors become one stderr line and exit code 2. */
export function runMachinesCommand(args: string[]): number {
  try {
    return machinesCommand(args);
  } catch (error) {
    if (error instanceof CommandError) {
      process.stderr.write(`batch-emitter: ${error.message}\n`);
      return error.exitCode;
    }
    throw error;
  }
}
