#!/usr/bin/env node
import { main } from './cli/cli.js';
import { boundHeapGrowth } from './util/heap-tuning.js';

boundHeapGrowth();

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`batch-emitter: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
