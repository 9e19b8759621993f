import { describe, expect, it } from 'vitest';
import { LostLines } from '../../plugins/pino-lost.js';

describe("LostLines (the pino transport's count of lines it could not take)", () => {
  it('notices each reason once as it appears, and gives one total per reason at report', () => {
    const written: string[] = [];
    const lost = new LostLines((text) => written.push(text));
    lost.add('spool full (/s)', 1);
    lost.add('spool full (/s)', 1);
    lost.add('batch not written to the spool: disk', 1000);
    lost.add('spool full (/s)', 5);
    expect(written).toEqual([
      'batch-emitter/pino: log lines not accepted: spool full (/s); counting them, the total comes at close\n',
      'batch-emitter/pino: log lines not accepted: batch not written to the spool: disk; counting them, the total comes at close\n',
    ]);
    written.length = 0;
    lost.report();
    expect(written).toEqual([
      'batch-emitter/pino: 7 log lines not accepted: spool full (/s)\n',
      'batch-emitter/pino: 1000 log lines not accepted: batch not written to the spool: disk\n',
    ]);
  });

  it('reports nothing when every line was taken', () => {
    const written: string[] = [];
    new LostLines((text) => written.push(text)).report();
    expect(written).toEqual([]);
  });
});
