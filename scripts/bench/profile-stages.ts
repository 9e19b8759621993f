/**
 * The emitter's main-thread CPU by stage of its chain (README "How it works"), from a V8 CPU
 * profile: each sample goes to one stage, decided by its stack.
 *
 * The innermost frame of the repo's own code (src/, machines/) names the stage by its folder;
 * three files are stages of their own: src/ingress/jetstream-ack.ts and src/ingress/ack-gate.ts (acks) and
 * src/delivery/http-transport.ts (transport). Shared code (src/model.ts, src/util/) counts for the
 * stage that called it; src/observe/ is "other". Library frames below it count for that stage, except
 * three that are stages themselves wherever they are called from: zlib (gzip), undici (transport)
 * and the NATS client's publish (acks; the emitter publishes nothing else at full speed). A stack
 * with no own frame goes by its innermost library: the NATS client (its socket reading and
 * protocol parsing: ingress; its flushing of outgoing acks: acks), undici (transport), LevelDB
 * (spool); V8's `(garbage collector)` is GC; the rest is "other" (timers, the event loop, node's
 * internals, the observe stage, start-up leftovers).
 */

export const STAGES = [
  'ingress',
  'intake',
  'spool',
  'sender',
  'transport',
  'acks',
  'gzip',
  'GC',
  'other',
] as const;
export type Stage = (typeof STAGES)[number];

export interface Frame {
  functionName: string;
  url: string;
}

const OWN = /\/(src|machines)\/([\w-]+)(\/[\w.-]+|\.[jt]s)/;

/** The stage of an own-code frame, or undefined for a library / node frame. */
function ownStage(url: string): Stage | undefined {
  if (url.includes('node_modules')) return undefined;
  const m = OWN.exec(url);
  if (!m) return undefined;
  const [, root, folder, file] = m;
  if (root === 'machines') {
    if (folder === 'buffer') return 'intake';
    return 'sender'; // delivery, breaker, limiter
  }
  if (folder === 'ingress')
    return file?.startsWith('/jetstream-ack') || file?.startsWith('/ack-gate') ? 'acks' : 'ingress';
  if (folder === 'intake') return 'intake';
  if (folder === 'spool') return 'spool';
  if (folder === 'delivery') return file?.startsWith('/http-transport') ? 'transport' : 'sender';
  if (folder === 'observe') return 'other';
  return undefined; // src/model.ts, src/util/, ...: the caller's stage
}

const NATS = '@nats-io/';
const NATS_SEND = /^(publish|_publish|flushPending|sendCommand|_doFlush|flush|write|send|_send|enqueue)$/;

/** A library frame that is a stage wherever it runs. */
function libraryStage(frame: Frame): Stage | undefined {
  const { url, functionName } = frame;
  if (url === 'node:zlib' || url.endsWith('/zlib.js') || functionName === 'zlibOnError') return 'gzip';
  if (url.includes('node_modules/undici/')) return 'transport';
  if (url.includes(NATS) && /^(publish|respond)$/.test(functionName)) return 'acks';
  return undefined;
}

/** Stack with no own code: the innermost library that says what the work was. */
function libraryOnlyStage(stack: readonly Frame[]): Stage {
  for (const frame of stack) {
    const { url, functionName } = frame;
    if (url.includes(NATS)) return NATS_SEND.test(functionName) ? 'acks' : 'ingress';
    if (/node_modules\/(classic-level|abstract-level|level)/.test(url)) return 'spool';
  }
  return 'other';
}

/** `stack` from the sampled (innermost) frame outwards. */
export function stageOf(stack: readonly Frame[]): Stage {
  const leaf = stack[0];
  if (!leaf) return 'other';
  if (leaf.functionName === '(garbage collector)') return 'GC';
  for (const frame of stack) {
    const lib = libraryStage(frame);
    if (lib) return lib;
    const own = ownStage(frame.url);
    if (own) return own;
  }
  return libraryOnlyStage(stack);
}
