import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import * as undici from 'undici';
import { describe, expect, it } from 'vitest';
import { buildConnector, dispatcherRequest, Pool } from '../../src/delivery/undici-parts.js';

describe('what the service loads', () => {
  it('takes the same Pool, connector and request as undici exports', () => {
    expect(Pool).toBe(undici.Pool);
    expect(buildConnector).toBe(undici.buildConnector);
    // this file loads the index, which puts its request on every dispatcher
    expect(dispatcherRequest).toBe(undici.Dispatcher.prototype.request);
  });

  it('leaves the PostgreSQL client and undici index unloaded until asked for', () => {
    // a fresh process: the CLI (and with it the whole service) imported, nothing run
    const script = `
      const { createRequire } = await import('node:module');
      await import(${JSON.stringify(new URL('../../src/cli/cli.ts', import.meta.url).href)});
      const cache = createRequire(import.meta.url).cache;
      console.log(JSON.stringify(Object.keys(cache).filter((f) => f.includes('/node_modules/'))));`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    const loaded = JSON.parse(out.trim().split('\n').pop() as string) as string[];
    const undiciDir = createRequire(import.meta.url)
      .resolve('undici')
      .replace(/index\.js$/, '');
    expect(loaded.some((f) => f.includes('/node_modules/undici/'))).toBe(true);
    expect(loaded).not.toContain(`${undiciDir}index.js`);
    expect(loaded.filter((f) => f.includes('/node_modules/pg/'))).toEqual([]);
  });
});
