/** CPU per event of compressing the bench's batches at the emitter's gzip level, measured in this process. */
import { gzipSync } from 'node:zlib';
import { GZIP_LEVEL } from '../../src/spool/batch-codec.js';
import { batchDocument } from './payload.js';
import { S } from './settings.js';

/** CPU s per 1M events for gzip at GZIP_LEVEL of batches of S.batchSize events (a few warm-up rounds first). */
export function gzipCpuSPerM(rounds = 40): number {
  const doc = Buffer.from(batchDocument('0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', 1_000_000, S.batchSize));
  for (let k = 0; k < 5; k++) gzipSync(doc, { level: GZIP_LEVEL });
  const cpu0 = process.cpuUsage();
  for (let k = 0; k < rounds; k++) gzipSync(doc, { level: GZIP_LEVEL });
  const cpu = process.cpuUsage(cpu0);
  return ((cpu.user + cpu.system) / 1e6 / (rounds * S.batchSize)) * 1e6;
}
