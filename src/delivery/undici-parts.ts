import { createRequire } from 'node:module';
import type { buildConnector as BuildConnector, Dispatcher, Pool as PoolClass } from 'undici';

/**
 * The parts of undici the transport uses, loaded on their own: undici's index loads all of it
 * (fetch, WebSocket, EventSource, the cache and mock agents), ~7 MB more resident memory in every
 * emitter for nothing it calls. undici has no `exports` map, so its files are reachable as its
 * index reaches them; should another undici release move one, the index is loaded instead.
 */
const require = createRequire(import.meta.url);

function part<T>(file: string, fromIndex: (index: typeof import('undici')) => T): T {
  try {
    return require(`undici/lib/${file}`) as T;
  } catch {
    return fromIndex(require('undici') as typeof import('undici'));
  }
}

export const Pool = part<typeof PoolClass>('dispatcher/pool.js', (index) => index.Pool);
export const buildConnector = part<typeof BuildConnector>('core/connect.js', (index) => index.buildConnector);

type RequestOn = (this: Dispatcher, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;
/** What undici's index puts on every dispatcher as `request`. */
export const dispatcherRequest = part<RequestOn>(
  'api/api-request.js',
  (index) => index.Dispatcher.prototype.request as RequestOn,
);

/** `dispatcher.request(options)` as undici's index provides it. */
export function request(
  dispatcher: Dispatcher,
  options: Dispatcher.RequestOptions,
): Promise<Dispatcher.ResponseData> {
  return dispatcherRequest.call(dispatcher, options);
}
