// XState: the emitter as actor logic, invoked by a parent machine. It accepts ADD, ADD_EDGE,
// ADD_NODE and FLUSH; when it stops (here: the parent leaves `probing`) it flushes, waits for
// deliveries (at most closeTimeoutS, default 5 s) and closes.
import { createActor, sendTo, setup } from 'xstate';
import { emitterLogic, emittersClosed } from 'batch-emitter/xstate';

const destinationUrl = process.env.DESTINATION_URL ?? 'https://ingest.example.com/v1/batch';
const spoolDir = process.env.SPOOL_DIR ?? './spool';
const allowInsecureHttp = process.env.ALLOW_INSECURE_HTTP === 'true';

const probe = setup({ actors: { emitter: emitterLogic } }).createMachine({
  id: 'probe',
  initial: 'probing',
  states: {
    probing: {
      invoke: { id: 'emitter', src: 'emitter', input: { destinationUrl, spoolDir, allowInsecureHttp } },
      on: {
        FOUND: {
          actions: sendTo('emitter', ({ event }) => ({
            type: 'ADD',
            subject: 'probe.found',
            data: event.finding,
          })),
        },
        'emitter.error': { actions: ({ event }) => console.error(event.error) },
        DONE: 'done',
      },
    },
    done: { type: 'final' },
  },
});

const actor = createActor(probe).start();
for (const host of ['a.example', 'b.example', 'c.example']) {
  actor.send({ type: 'FOUND', finding: { host } });
}
actor.send({ type: 'DONE' }); // leaves `probing`: the emitter actor stops and closes in the background
await emittersClosed(); // XState cannot await a stopping actor; a program that exits awaits this
console.log('probe done');
