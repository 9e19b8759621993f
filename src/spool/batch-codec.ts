import { promisify } from 'node:util';
import { crc32, gunzip as gunzipCallback, gzip as gzipCallback } from 'node:zlib';
import { BatchDocumentSchema, SECTIONS, type BatchDocument } from '../model.js';
import type { BatchState } from './spool.js';

/**
 * Encoding and decoding of spooled batch bodies, the spool record of a new body, and the 413
 * split into halves. Pure functions of a body and its record: it never reads or writes the spool.
 */

const gzip = promisify(gzipCallback);
const gunzip = promisify(gunzipCallback);

/**
 * The default level (TRANSMITTER_GZIP_LEVEL): on events of varied content level 1 costs a third to a
 * half of level 6's CPU for bodies ~13% larger; compression was the emitter's largest single cost.
 */
export const GZIP_LEVEL = 1;

/** `level`: the gzip level (1 fastest .. 9 smallest; TRANSMITTER_GZIP_LEVEL). */
export async function encodeBody(
  json: string | Buffer,
  encoding: BatchState['encoding'],
  level = GZIP_LEVEL,
): Promise<Buffer> {
  const raw = typeof json === 'string' ? Buffer.from(json) : json;
  return encoding === 'gzip' ? gzip(raw, { level }) : raw;
}

export async function rawBody(state: BatchState, body: Buffer): Promise<Buffer> {
  return state.encoding === 'gzip' ? gunzip(body) : body;
}

/** Decode a spooled body into its document; throws when it does not decode or validate. */
export async function decodeBody(state: BatchState, body: Buffer): Promise<BatchDocument> {
  const doc = BatchDocumentSchema.parse(JSON.parse((await rawBody(state, body)).toString('utf8')));
  if (doc.batch_id !== state.id) throw new Error(`body batch_id ${doc.batch_id} does not match ${state.id}`);
  return doc;
}

function itemCount(doc: BatchDocument): number {
  return SECTIONS.reduce((n, s) => n + doc[s].length, 0);
}

/** Two documents holding the first and second half of the items, each with a new id. */
export function splitDocument(doc: BatchDocument, newId: () => string): [BatchDocument, BatchDocument] {
  const all = SECTIONS.flatMap((section) => doc[section].map((value) => ({ section, value })));
  const half = Math.ceil(all.length / 2);
  const make = (part: typeof all): BatchDocument => {
    const out: BatchDocument = {
      ...doc,
      batch_id: newId(),
      nodes_domain: [],
      nodes_ip: [],
      nodes_cert: [],
      edges: [],
      events: [],
    };
    for (const { section, value } of part) (out[section] as unknown[]).push(value);
    return out;
  };
  return [make(all.slice(0, half)), make(all.slice(half))];
}

export async function toSpoolRecord(
  doc: BatchDocument,
  encoding: BatchState['encoding'],
  base: Pick<BatchState, 'subjects'> & { parentId?: string },
  level = GZIP_LEVEL,
): Promise<{ state: BatchState; body: Buffer }> {
  const json = JSON.stringify(doc);
  const body = await encodeBody(json, encoding, level);
  return {
    state: {
      v: 1,
      id: doc.batch_id,
      createdAt: doc.created_at,
      itemCount: itemCount(doc),
      rawBytes: Buffer.byteLength(json),
      storedBytes: body.length,
      encoding,
      subjects: base.subjects,
      attempts: 0,
      parentId: base.parentId,
      crc32: crc32(body),
    },
    body,
  };
}

/** The transmitter service's body shape: every item's data in one list (events contribute their `data`). */
export function toDiscoveries(doc: BatchDocument): { discoveries: unknown[] } {
  return {
    discoveries: [
      ...doc.nodes_domain,
      ...doc.nodes_ip,
      ...doc.nodes_cert,
      ...doc.edges,
      ...doc.events.map((e) => e.data),
    ],
  };
}
