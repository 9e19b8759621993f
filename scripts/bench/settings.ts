/**
 * The bench's command line (node:util parseArgs) and the sizes of every part. Parsed once, when
 * this module loads: `--help` prints the usage and exits 0, a bad option or part exits 2.
 */
import { parseArgs } from 'node:util';

/** the parts `--only` accepts */
export const PARTS = ['scale', 'latency', 'e2e', 'pino'] as const;
export type Part = (typeof PARTS)[number];

export const USAGE =
  'usage: npm run bench [-- --quick] [--no-profile] [--scale] [--only scale|latency|e2e|pino] [--emitter <path to bin.js>]\n' +
  '                     [--events N]\n' +
  '  --quick       shorter runs; leaves out the scale-out part unless --scale is given too\n' +
  '  --scale       include the scale-out part (1, 2, 3 emitter processes on one durable, 3-node cluster, R3 stream;\n' +
  '                in the full run by default)\n' +
  '  --only scale  run only the scale-out part; its figures replace "scale" in an existing bench-results/bench.json\n' +
  '  --only latency  run only the latency part (10,000/s and 2,000/s offered); replaces "latency" likewise\n' +
  '  --only e2e    the bare consumers (ack each, acks of a batch together, AckAll), then end to end with the spool\n' +
  '                on disk, gzip and TRANSMITTER_COMPRESSION=none, and a profiled run (compare builds with --emitter)\n' +
  '  --only pino   batch-emitter/pino against pino-loki and pino-opentelemetry-transport (1,000,000 lines;\n' +
  '                200,000 with --quick); replaces "pino" likewise\n' +
  '  --events N    events per run of the raw and end-to-end parts (default 1,000,000; 50,000 with --quick)\n';

function usageError(message: string): never {
  process.stderr.write(`${message}\n${USAGE}`);
  process.exit(2);
}

function parseCommandLine() {
  try {
    return parseArgs({
      options: {
        quick: { type: 'boolean', default: false },
        'no-profile': { type: 'boolean', default: false },
        scale: { type: 'boolean', default: false },
        only: { type: 'string' },
        emitter: { type: 'string' },
        events: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    return usageError((error as Error).message);
  }
}

const args = parseCommandLine();
if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const EVENTS = args.events === undefined ? undefined : Number(args.events);
if (EVENTS !== undefined && !(Number.isSafeInteger(EVENTS) && EVENTS >= 1000))
  usageError(`--events: ${JSON.stringify(args.events)} is not a whole number of at least 1000`);
if (args.only !== undefined && !(PARTS as readonly string[]).includes(args.only))
  usageError(`--only: unknown part ${JSON.stringify(args.only)} (parts: ${PARTS.join(', ')})`);

export const QUICK = args.quick;
export const PROFILE = !args['no-profile'];
/** `--emitter <bin.js>`: run another build of the emitter (e.g. a patched copy, for a what-if) */
export const EMITTER_ARG = args.emitter;
/** `--only <part>`: run just that part (and merge its figures into an existing bench.json) */
export const ONLY = args.only as Part | undefined;
/** the scale-out part: in the full run, with --scale, or with --only scale */
export const SCALE = ONLY === 'scale' || args.scale || (!QUICK && ONLY === undefined);

export const S = {
  events: EVENTS ?? (QUICK ? 50_000 : 1_000_000),
  batchSize: 1000,
  intervalS: 1,
  concurrency: 4,
  sinkLimitS: QUICK ? 3 : 6,
  latencyRate: 10_000,
  latencyS: QUICK ? 10 : 20,
  latencyWarmS: 2,
  outageRate: 5_000,
  outageWarmS: QUICK ? 8 : 15,
  /** a supplementary latency run below the saturation point */
  lowLatencyRate: 2_000,
  lowLatencyS: QUICK ? 8 : 15,
  /** the e2e experiment with a pre-created consumer allowing more unacknowledged messages */
  bigAckPending: 8 * 1000,
  outageS: QUICK ? 15 : 60,
  outageRecoveryMaxS: QUICK ? 60 : 120,
  e2eTimeoutS: 600,
  /** scale-out: events pre-published into their own stream, shared by 1, 2, 3 emitter processes */
  scaleEvents: QUICK ? 60_000 : 200_000,
  /** scale-out: nats-server cluster nodes on loopback, and the replicas of the SCALE stream */
  scaleClusterNodes: 3,
  scaleStreamReplicas: 3,
  scaleProcesses: [1, 2, 3],
  /** in the 3-process run one process is SIGKILLed when this share of the events is delivered */
  scaleKillAt: 0.3,
  /**
   * ack_wait of the scale-out consumers (TRANSMITTER_NATS_ACK_WAIT_S; default 2 x interval + 60 s),
   * so that the killed process's unacked messages are redelivered within the run
   */
  scaleAckWaitS: 10,
  /** --only pino: lines per burst, and bursts per transport */
  pinoLines: QUICK ? 200_000 : 1_000_000,
  pinoRepeats: 2,
};
