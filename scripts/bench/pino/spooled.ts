/**
 * The line numbers in a batch-emitter spool (after its process was killed, so the database is free):
 * every stored batch body (sublevel 'b', gzip or plain JSON), its events' `seqNo`. Lets the kill
 * scenario check that every line the transport had made durable was delivered after the restart.
 */
import { gunzipSync } from 'node:zlib';
import { Level } from 'level';

const LINE_NUMBER = /"seqNo":(\d+)/g;
const GZIP_MAGIC = 0x1f;

export async function spooledLines(spoolDir: string): Promise<number[]> {
  const db = new Level<string, Buffer>(spoolDir, { valueEncoding: 'buffer', createIfMissing: false });
  const numbers: number[] = [];
  try {
    const bodies = db.sublevel<string, Buffer>('b', { valueEncoding: 'buffer' });
    for await (const body of bodies.values()) {
      const text = (body[0] === GZIP_MAGIC ? gunzipSync(body) : body).toString('utf8');
      for (const m of text.matchAll(LINE_NUMBER)) numbers.push(Number(m[1]));
    }
  } finally {
    await db.close();
  }
  return numbers;
}
