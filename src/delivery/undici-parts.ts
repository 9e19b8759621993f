import { createRequire } from 'node:module';
import type { buildConnector as BuildConnector, Dispatcher, Pool as PoolClass } from 'undici';

/**
 * The parts of undici the transport uses, loaded on their own: undici's index loads all of it
 * (fetch, WebSocket, EventSource, the cache and mock agents), ~7 MB more resident memory in every
 * emitter for nothing it calls. undici has no `exports` map, so these files are reachable as its
 * index reaches them; the types are the index's. package-lock.json pins the version tests ran on.
 */
const require = createRequire(import.meta.url);

export const Pool = require('undici/lib/dispatcher/pool.js') as typeof PoolClass;
export const buildConnector = require('undici/lib/core/connect.js') as typeof BuildConnector;

type RequestOn = (this: Dispatcher, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;
// the index puts this on Dispatcher.prototype as `request`; called on the pool here instead
const requestOn = require('undici/lib/api/api-request.js') as RequestOn;

/** `dispatcher.request(options)` as undici's index provides it. */
export function request(
  dispatcher: Dispatcher,
  options: Dispatcher.RequestOptions,
): Promise<Dispatcher.ResponseData> {
  return requestOn.call(dispatcher, options);
}
