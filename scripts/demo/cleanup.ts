/**
 * The demo's undo list: each step it takes registers how to undo it; on success, failure or a
 * signal they run once, in reverse order, bounded to 15 s, never throwing. A forced exit still
 * kills its nats-server and removes temp dirs through harness/cleanup.ts at process exit.
 */
import { constants as osConstants } from 'node:os';
import { leaveSignalsToCaller } from '../../harness/cleanup.js';

const steps: { what: string; run: () => unknown }[] = [];
let cleaning: Promise<void> | undefined;
let interruptedAt = 0;

export const onCleanup = (what: string, run: () => unknown): void => void steps.push({ what, run });

export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    const deadline = new Promise<void>((r) => setTimeout(r, 15_000).unref());
    const all = (async () => {
      for (const step of steps.reverse()) {
        try {
          await step.run();
        } catch (error) {
          process.stderr.write(`  cleanup: ${step.what} failed: ${(error as Error).message}\n`);
        }
      }
    })();
    await Promise.race([all, deadline]);
  })();
  return cleaning;
}

export const interrupted = (): boolean => interruptedAt > 0;

/**
 * On SIGINT/SIGTERM: `beforeCleanup` (e.g. stop the progress bar), clean up, exit 128+signal.
 * A Ctrl-C reaches the demo twice (from the terminal and relayed by its launcher): only a second
 * press, later, forces the exit.
 */
export function cleanUpOnSignals(beforeCleanup: () => void): void {
  leaveSignalsToCaller();
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.on(signal, () => {
      const code = 128 + osConstants.signals[signal];
      if (interrupted()) {
        if (Date.now() - interruptedAt > 1000) process.exit(code);
        return;
      }
      interruptedAt = Date.now();
      beforeCleanup();
      process.stderr.write(`\n${signal}: cleaning up (press Ctrl-C again to force)\n`);
      void cleanup().finally(() => process.exit(code));
    });
}
