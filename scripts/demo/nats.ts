/**
 * Where the demo's NATS comes from: the server at TRANSMITTER_NATS_URL when one with JetStream
 * answers, otherwise a private nats-server (harness/nats.ts) stopped at the end.
 */
import { serverVersion, startNats } from '../../harness/nats.js';
import { findNatsServer, probeNats } from '../../harness/nats-probe.js';
import { onCleanup } from './cleanup.js';

export interface DemoNats {
  url: string;
  /** the demo started this server: it may own approved.> */
  own: boolean;
}

export class NoNatsError extends Error {
  readonly code = 'DEMO_NO_NATS';
}

export async function demoNats(requested: string, say: (line: string) => void): Promise<DemoNats> {
  const urls = requested
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const found = await probeNats(urls, 'batch-emitter-demo-probe');
  if (found?.jetstream) {
    say(`  NATS     ${found.url} answers: using it`);
    return { url: found.url, own: false };
  }
  if (found) say(`  NATS     ${found.url} answers but has no JetStream: starting a private nats-server`);
  const bin = findNatsServer();
  if (!bin)
    throw new NoNatsError(
      `No NATS JetStream server answers at ${requested} and nats-server is not installed: install it with ` +
        '`sudo apt-get install nats-server` (or point TRANSMITTER_NATS_URL at a JetStream server) and run `npm run demo` again.',
    );
  // detached: a Ctrl-C at the terminal must not stop the server before the emitter has closed
  const own = await startNats({ bin, detached: true, readyTimeoutMs: 10_000 });
  onCleanup('stop nats-server', () => own.stop());
  say(
    `  NATS     nothing answers at ${requested}: started ${bin} ${serverVersion(own.logs())} on ${own.url}`,
  );
  say(`           (config: a copy of nats.conf; store ${own.storeDir}; stopped at the end)`);
  return { url: own.url, own: true };
}
