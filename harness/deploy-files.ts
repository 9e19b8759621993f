import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Reading the files of deploy/ the way their tools do, for the tests that check them. */

export const DEPLOY = fileURLToPath(new URL('../deploy/', import.meta.url));

export interface Instruction {
  /** upper case: FROM, RUN, CMD, ... */
  readonly name: string;
  readonly args: string;
}

/** A Dockerfile's instructions per stage (continuation lines joined, comments dropped). */
export function dockerfileStages(path: string): Instruction[][] {
  const text = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const stages: Instruction[][] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const instruction = { name: m[1]!.toUpperCase(), args: m[2]!.trim() };
    if (instruction.name === 'FROM') stages.push([]);
    stages.at(-1)?.push(instruction);
  }
  return stages;
}

/** The JSON (exec form) argument list of an instruction such as `CMD ["node", "x.js"]`. */
export function execForm(args: string): string[] {
  const parsed = JSON.parse(args) as unknown;
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string'))
    throw new Error(`not an exec form: ${args}`);
  return parsed as string[];
}

/** A systemd unit's settings: `Key=value` lines by key, in order, sections ignored. */
export function unitSettings(path: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) settings.set(m[1]!, [...(settings.get(m[1]!) ?? []), m[2]!]);
  }
  return settings;
}

/** KEY=value lines of an environment file (as systemd's EnvironmentFile and docker --env-file). */
export function envFile(path: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}
