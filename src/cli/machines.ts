import { MACHINES, MACHINE_NAMES, machineGraphs } from '../observe/views/machines.js';
import { graphToMermaid } from '../observe/views/mermaid.js';
import type { StateGraph } from '../observe/views/statechart.js';
import { CommandError, EXIT_CONFIG, EXIT_OK, out, parseArgs } from './common.js';

/**
 * `batch-emitter machines [--format mermaid|json] [--machine buffer|delivery|breaker|limiter]`: the
 * statecharts read from the real machine definitions. Mermaid: one titled `stateDiagram-v2`
 * document per machine, separated by a blank line; JSON: `{ buffer, delivery, breaker, limiter }` graphs.
 * Reads no environment variable. Usage errors exit 2 with one line on stderr.
 */

export const MACHINES_USAGE = `batch-emitter machines [--format mermaid|json] [--machine ${MACHINE_NAMES.join('|')}[,...]]`;

const FORMATS = ['mermaid', 'json'] as const;

function usageError(message: string): CommandError {
  return new CommandError(message, EXIT_CONFIG);
}

export function machinesCommand(args: string[]): number {
  let parsed;
  try {
    parsed = parseArgs(args, { values: ['--format', '--machine'] }, MACHINES_USAGE);
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
    const diagrams = chosen.map((m) => graphToMermaid(graphs[m.name] as StateGraph, { title: m.title }));
    out(diagrams.join('\n').trimEnd());
  }
  return EXIT_OK;
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
