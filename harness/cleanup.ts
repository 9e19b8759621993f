/**
 * Run synchronous cleanups (kill spawned servers, remove temp dirs) when the test process ends,
 * however it ends: normal exit, or SIGTERM/SIGINT/SIGHUP. vitest 4 ends its fork workers with
 * SIGTERM, on which Node does not emit 'exit'; a SIGINT to vitest skips teardown hooks and can
 * leave a worker orphaned (its IPC channel 'disconnect's).
 * After cleaning up on a signal, the signal is re-raised (default action) unless some other
 * listener is there to handle it.
 */
const fns: (() => void)[] = [];
let installed = false;
let signalsLeftToCaller = false;

/**
 * For a script with its own SIGINT/SIGTERM handling (an orderly async shutdown that ends in
 * process.exit): the cleanups then run at that exit, not as soon as the signal arrives.
 */
export function leaveSignalsToCaller(): void {
  signalsLeftToCaller = true;
}

function runAll(): void {
  while (fns.length > 0) {
    try {
      fns.shift()!(); // in registration order: servers are killed before their dirs go
    } catch {
      // best effort
    }
  }
}

export function atProcessEnd(fn: () => void): void {
  fns.push(fn);
  if (installed) return;
  installed = true;
  process.once('exit', runAll);
  // A fork worker whose parent (the vitest main process) died, e.g. on Ctrl-C, loses its IPC
  // channel and may keep running orphaned until its current test ends: clean up right away.
  if (typeof process.send === 'function') process.once('disconnect', runAll);
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(sig, () => {
      if (signalsLeftToCaller) return;
      runAll();
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    });
  }
}
