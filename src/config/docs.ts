import { OPTIONS, VARIABLES, type OptionSpec, type VariableName } from './options.js';

/**
 * The option table as people read it: the README's Configuration table (Markdown, laid out as
 * prettier lays it out) and the variable list of `batch-emitter run --help`. Text only.
 */

interface Row {
  variable: string;
  option: string;
  default: string;
  meaning: string;
}

function shownDefault(spec: OptionSpec): string {
  if (spec.shownDefault !== undefined) return spec.shownDefault;
  if (spec.required && !spec.required.embeddedOnly) return 'required';
  if (typeof spec.default === 'string') return `\`${spec.default}\``;
  return 'unset';
}

function optionCell(spec: OptionSpec): string {
  if (spec.option === undefined) return '-';
  return spec.required?.embeddedOnly ? `\`${spec.option}\` (required)` : `\`${spec.option}\``;
}

/** The documented meaning, with how the value is written when its kind says it. */
function meaningOf(spec: OptionSpec): string {
  return spec.kind.form === undefined ? spec.doc : `${spec.doc} (${spec.kind.form})`;
}

function rowOf(variable: VariableName): Row {
  const spec: OptionSpec = OPTIONS[variable];
  return {
    variable: `\`${variable}\``,
    option: optionCell(spec),
    default: shownDefault(spec),
    meaning: meaningOf(spec),
  };
}

const HEADER: Row = {
  variable: 'variable',
  option: 'embedded option',
  default: 'default',
  meaning: 'meaning',
};
const COLUMNS = ['variable', 'option', 'default', 'meaning'] as const;

/** The README Configuration table, one row per variable. */
export function configTable(): string {
  const rows = [HEADER, ...VARIABLES.map(rowOf)];
  const widths = COLUMNS.map((column) => Math.max(...rows.map((row) => row[column].length)));
  const line = (cells: string[]) => `| ${cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  const rule = line(widths.map((width) => '-'.repeat(width)));
  const [header, ...body] = rows.map((row) => line(COLUMNS.map((column) => row[column])));
  return [header, rule, ...body].join('\n');
}

const plain = (text: string) => text.replaceAll('`', '');

function wrap(text: string, indent: string, width = 100): string[] {
  const lines: string[] = [];
  let current = indent;
  for (const word of text.split(' ')) {
    if (current.length + word.length + 1 > width && current.trim() !== '') {
      lines.push(current);
      current = indent;
    }
    current += current.trim() === '' ? word : ` ${word}`;
  }
  return [...lines, current];
}

/** `batch-emitter run --help`: every variable with its default and meaning. */
export function variablesHelp(): string {
  const entries = VARIABLES.map((variable) => {
    const spec: OptionSpec = OPTIONS[variable];
    const shown = plain(shownDefault(spec));
    const head = `  ${variable} (${shown === 'required' ? shown : `default: ${shown}`})`;
    return [head, ...wrap(plain(meaningOf(spec)), '      ')].join('\n');
  });
  return `${entries.join('\n')}\n`;
}
