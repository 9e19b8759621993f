/**
 * `batch-emitter <command> --help`: the lines of the general help that name the command, with
 * their continuation lines, so that each command's usage is written once (in the help text).
 */

export function wantsHelp(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).some((arg) => arg === '--help' || arg === '-h');
}

/** The usage of `command` from the general help, or undefined when the help names no such command. */
export function usageFrom(help: string, command: string): string | undefined {
  const entry = new RegExp(`^ {2}batch-emitter ${command}(\\s|$)`);
  const kept: string[] = [];
  let inside = false;
  const notes: string[] = [];
  for (const line of help.split('\n')) {
    if (/^ {2}batch-emitter /.test(line)) inside = entry.test(line);
    else if (/^ {2}--/.test(line)) {
      notes.push(line);
      inside = false;
    } else if (!/^ {3}/.test(line)) inside = false;
    // continuation lines (deeper indent) belong to the entry above
    if (inside) kept.push(line);
  }
  // a note on an option (`  --reason matches ...`) goes with the commands that take it
  const text = kept.join('\n');
  kept.push(...notes.filter((note) => text.includes(note.trim().split(/\s/)[0] ?? '')));
  return kept.length === 0 ? undefined : `Usage:\n${kept.join('\n')}\n`;
}
