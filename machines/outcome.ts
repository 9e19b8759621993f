/**
 * The classified result of one delivery attempt. Produced by the transport's
 * `classifyResponse` (src/delivery/classify.ts) and timed by the batch sender
 * (src/delivery/batch-sender.ts); consumed by the delivery and breaker machines.
 */
export type Outcome = Verdict & {
  /** round trip of the request; absent when no request was made (the batch had left the spool) */
  durationMs?: number;
};

type Verdict =
  | { kind: 'success'; status: number }
  | {
      kind: 'retryable';
      status?: number;
      /** short reason: 'http_503', 'ECONNREFUSED', 'timeout', ... */
      reason: string;
      /** from a Retry-After header, already converted to milliseconds from now (uncapped) */
      retryAfterMs?: number;
    }
  /** 413 with more than one item: the batch must be split in two halves */
  | { kind: 'split'; status: 413 }
  | { kind: 'permanent'; status: number; reason: string; bodyExcerpt?: string };

export type OutcomeKind = Outcome['kind'];
