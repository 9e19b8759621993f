import { afterEach, describe, expect, it, vi } from 'vitest';
import { runOperatorCommand } from '../../src/cli/operator.js';

/** The operator commands read only the spool dir (and retarget the destination), and refuse a mistyped variable. */

afterEach(() => {
  vi.restoreAllMocks();
});

describe('operator commands and the environment', () => {
  it('a mistyped TRANSMITTER_* variable exits 2 naming it and the nearest one, before the spool is opened', async () => {
    let stderr = '';
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
    const code = await runOperatorCommand('spool', ['list'], { TRANSMITTER_SPOOLDIR: '/nonexistent' });
    expect(code).toBe(2);
    expect(stderr).toBe(
      'batch-emitter: invalid configuration: TRANSMITTER_SPOOLDIR: is not a known variable; ' +
        'did you mean TRANSMITTER_SPOOL_DIR? (batch-emitter run --help lists them)\n',
    );
  });

  it('spool retarget needs a valid TRANSMITTER_DESTINATION_URL: exit 2 naming it', async () => {
    let stderr = '';
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
    const missing = await runOperatorCommand('spool', ['retarget'], {
      TRANSMITTER_SPOOL_DIR: '/nonexistent',
    });
    expect(missing).toBe(2);
    expect(stderr).toMatch(/^batch-emitter: invalid configuration: TRANSMITTER_DESTINATION_URL: is required/);
  });
});
