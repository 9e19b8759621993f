import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/cli.js';
import { usageFrom, wantsHelp } from '../../src/cli/usage.js';

/** `batch-emitter <command> --help` (and -h): that command's usage on stdout, exit 0, nothing started. */

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
  const code = await main(argv);
  vi.restoreAllMocks();
  return { code, stdout, stderr };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('help for every command', () => {
  it.each([
    [['run', '--help'], 'TRANSMITTER_DESTINATION_URL (required)'],
    [['run', '-h'], 'TRANSMITTER_DEBUG (default: false)'],
    [['machines', '--help'], 'batch-emitter machines [--format mermaid|json]'],
    [['machines', '-h', '--format', 'json'], 'batch-emitter machines [--format mermaid|json]'],
    [['dlq', '--help'], 'batch-emitter dlq replay <id> | --all | --reason <substring>'],
    [['dlq', 'purge', '-h'], 'batch-emitter dlq purge'],
    [['spool', '--help'], 'batch-emitter spool verify'],
    [['spool', 'retarget', '-h'], 'batch-emitter spool retarget [--yes]'],
    [['spool', 'quarantine', 'purge', '--help'], 'batch-emitter spool quarantine list'],
  ])('%j prints its usage and exits 0', async (argv, expected) => {
    const env = { ...process.env };
    // nothing may start: without a destination, run would exit 2
    delete process.env.TRANSMITTER_DESTINATION_URL;
    try {
      const { code, stdout, stderr } = await run(argv);
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
      expect(stdout).toContain(expected);
      // its own usage, not the whole help
      const command = argv[0] as string;
      const others = ['run', 'machines', 'dlq', 'spool'].filter((c) => c !== command);
      for (const other of others) expect(stdout).not.toContain(`batch-emitter ${other} `);
    } finally {
      process.env = env;
    }
  });

  it('dlq help carries the note on --reason; spool help does not', () => {
    const help =
      'Usage:\n  batch-emitter dlq list  x\n  batch-emitter dlq purge --reason <r>\n  batch-emitter spool list\n  --reason matches a substring\n';
    expect(usageFrom(help, 'dlq')).toContain('--reason matches a substring');
    expect(usageFrom(help, 'spool')).not.toContain('--reason matches');
    expect(usageFrom(help, 'nothing')).toBeUndefined();
  });

  it('--help after -- is an argument, not a request for help', () => {
    expect(wantsHelp(['--', '--help'])).toBe(false);
    expect(wantsHelp(['list', '-h'])).toBe(true);
  });

  it('run refuses arguments instead of starting with them', async () => {
    const { code, stderr } = await run(['run', '--port', '1']);
    expect(code).toBe(2);
    expect(stderr).toBe('batch-emitter: run takes no arguments, not --port; see batch-emitter run --help\n');
  });
});
