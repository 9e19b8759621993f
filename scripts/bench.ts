/**
 * `npm run bench [-- --quick] [--no-profile] [--scale] [--only scale|latency|e2e|pino] [--emitter <bin.js>] [--events N]`: a benchmark, not a test. One run on this machine,
 * same data everywhere (~300-byte JSON events, batch 1000, gzip, synced LevelDB spool, loopback sink):
 *
 *   1. raw limits: three bare consumers in one Node process, each parsing every message: an ack of
 *      each on arrival, explicit acks of 1,000 together, AckAll one per 1,000 (client and
 *      nats-server CPU per event); the sink's acceptance rate for pre-built gzip batches (undici pool of 4)
 *   2. the emitter end to end (publish -> JetStream -> batch -> spool -> ack -> POST -> delete) as a
 *      child process on N pre-published messages, gzip and TRANSMITTER_COMPRESSION=none: events/s,
 *      MB/s, CPU per event (all threads, the main thread, each thread), peak RSS; against the
 *      batch-ack consumer, with the CPU split by stage (cost-report.ts, profile-stages.ts)
 *   3. publish -> delivered latency at 10,000 events/s offered, 1 s flush interval
 *   4. a sink outage (503) at 5,000 events/s offered, then recovery: RSS, spool growth, drain rate
 *   5. durability cost: the e2e run with the spool on tmpfs (/dev/shm) vs on disk
 *   6. a CPU profile of the emitter under the e2e load (node --cpu-prof), summarised
 *   7. scale-out (full run, `--scale`, or `--only scale`): on its own 3-node nats-server cluster on
 *      loopback, N events pre-published into a stream with 3 replicas, shared by 1, 2 and 3 emitter
 *      processes (given all three server URLs) on one durable consumer (a fresh one per run, R3 like
 *      the stream; one spool per process): aggregate events/s; then 3 again with one SIGKILLed at
 *      30 % and restarted: lost, duplicates
 *
 * Prints a table against the targets, writes bench-results/bench.json and bench-results/bench.svg.
 * Everything it starts (its own nats-server and cluster, the sink, emitters, temp dirs) is removed at the end.
 * The parts are in scripts/bench/ (settings.ts: the options and sizes; main.ts: the order of things).
 */
import { run } from './bench/main.js';

run();
