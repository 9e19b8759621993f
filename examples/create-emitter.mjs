// createEmitter in any program: start, fire the adds, then await them together.
// The emitter reads no environment; this example reads its destination and spool from
// DESTINATION_URL and SPOOL_DIR (ALLOW_INSECURE_HTTP=true only for a plain-http test sink).
import { createEmitter } from 'batch-emitter';

const emitter = createEmitter({
  destinationUrl: process.env.DESTINATION_URL ?? 'https://ingest.example.com/v1/batch',
  spoolDir: process.env.SPOOL_DIR ?? './spool',
  allowInsecureHttp: process.env.ALLOW_INSECURE_HTTP === 'true',
});
await emitter.start(); // opens the spool and replays what an earlier run left

const now = new Date().toISOString();
const added = [
  emitter.addNode({ host: 'a.example', apex: 'example', first_seen: now, last_seen: now }),
  emitter.addEdge({
    type: 'RESOLVES_TO',
    source: 'a.example',
    target: '192.0.2.1',
    observed_at: now,
    probe_id: 'p1',
    run_id: 'r1',
  }),
];
for (let order = 1; order <= 100; order++) added.push(emitter.add('shop.order', { order }));

// Each add resolves once its batch is durable in the spool. Do not await them one by one: the
// open batch is sealed when it is full, on flush(), or batchIntervalS (30 s) after its first item.
await emitter.flush(); // seal the open batch now
await Promise.all(added); // all durable
await emitter.wait(); // every sealed batch delivered, parked or dead-lettered
await emitter.close(); // idempotent; add() afterwards rejects with IntakeClosedError
console.log(`${added.length} items delivered`);
