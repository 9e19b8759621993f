/**
 * Additive increase / multiplicative decrease of a concurrency limit on round-trip times and back
 * pressure, after Vector's adaptive request concurrency. Pure arithmetic: it never measures time;
 * the round trips arrive as numbers.
 */

export interface AimdSettings {
  /** the limit is multiplied by this (then rounded down) on back pressure or a rising RTT */
  decreaseRatio: number;
  /** weight of the newest window in the RTT moving average */
  ewmaAlpha: number;
  /** the RTT counts as rising beyond mean + scale * deviation */
  rttDeviationScale: number;
  /** and at least beyond mean * (1 + this): timer noise on a fast link is not congestion */
  rttTolerance: number;
}

export const AIMD_DEFAULTS: AimdSettings = {
  decreaseRatio: 0.9,
  ewmaAlpha: 0.4,
  rttDeviationScale: 2.5,
  rttTolerance: 0.05,
};

/** Exponentially weighted mean and variance of the per-window RTTs (the baseline). */
export interface RttAverage {
  meanMs: number;
  variance: number;
}

/** What one window (as many completed requests as the limit) saw. */
export interface AimdWindow {
  completed: number;
  rttSumMs: number;
  rttCount: number;
  /** every permit was in use at some point: demand could use a higher limit */
  reachedLimit: boolean;
  /** a retryable failure (429, 503, timeout, ...) came back */
  backPressure: boolean;
}

export const EMPTY_WINDOW: AimdWindow = {
  completed: 0,
  rttSumMs: 0,
  rttCount: 0,
  reachedLimit: false,
  backPressure: false,
};

export function updateAverage(average: RttAverage | undefined, sampleMs: number, alpha: number): RttAverage {
  if (average === undefined) return { meanMs: sampleMs, variance: 0 };
  const difference = sampleMs - average.meanMs;
  const increment = alpha * difference;
  return {
    meanMs: average.meanMs + increment,
    variance: (1 - alpha) * (average.variance + difference * increment),
  };
}

function windowRtt(window: AimdWindow): number | undefined {
  return window.rttCount === 0 ? undefined : window.rttSumMs / window.rttCount;
}

function isRising(rttMs: number, baseline: RttAverage, settings: AimdSettings): boolean {
  const margin = Math.max(
    settings.rttDeviationScale * Math.sqrt(baseline.variance),
    settings.rttTolerance * baseline.meanMs,
  );
  return rttMs > baseline.meanMs + margin;
}

/** The limit after a window, within 1..max. */
export function nextLimit(
  limit: number,
  max: number,
  window: AimdWindow,
  baseline: RttAverage | undefined,
  settings: AimdSettings,
): number {
  const rtt = windowRtt(window);
  if (window.backPressure || (rtt !== undefined && baseline && isRising(rtt, baseline, settings))) {
    return Math.max(1, Math.floor(limit * settings.decreaseRatio));
  }
  // an increase needs evidence: demand filled every permit and the RTT stayed at the baseline
  const steady = rtt !== undefined && baseline !== undefined && rtt <= baseline.meanMs;
  if (steady && window.reachedLimit) return Math.min(max, limit + 1);
  return limit;
}

/** The baseline after a window: the window's mean RTT folded into the moving average. */
export function nextBaseline(
  baseline: RttAverage | undefined,
  window: AimdWindow,
  settings: AimdSettings,
): RttAverage | undefined {
  const rtt = windowRtt(window);
  return rtt === undefined ? baseline : updateAverage(baseline, rtt, settings.ewmaAlpha);
}
