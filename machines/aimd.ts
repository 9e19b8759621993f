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
  /** the RTT counts as rising beyond mean + scale * deviation, bounded by the two below */
  rttDeviationScale: number;
  /** the RTT is near the baseline up to mean * (1 + this), and rises only beyond twice that */
  rttTolerance: number;
  /** a rise beyond mean * (1 + this) always counts, however noisy the baseline was */
  rttRiseCap: number;
}

export const AIMD_DEFAULTS: AimdSettings = {
  decreaseRatio: 0.9,
  ewmaAlpha: 0.4,
  rttDeviationScale: 2.5,
  rttTolerance: 0.1,
  rttRiseCap: 0.5,
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
  const spread = settings.rttDeviationScale * Math.sqrt(baseline.variance);
  const least = 2 * settings.rttTolerance * baseline.meanMs;
  const most = settings.rttRiseCap * baseline.meanMs;
  return rttMs > baseline.meanMs + Math.min(most, Math.max(least, spread));
}

function isNear(rttMs: number, baseline: RttAverage, settings: AimdSettings): boolean {
  return rttMs <= baseline.meanMs * (1 + settings.rttTolerance);
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
  // an increase needs evidence: demand filled every permit and the RTT stayed near the baseline
  const steady = rtt !== undefined && baseline !== undefined && isNear(rtt, baseline, settings);
  if (steady && window.reachedLimit) return Math.min(max, limit + 1);
  return limit;
}

/**
 * The baseline after a window: the window's mean RTT folded into the moving average, unless it
 * was a rise caused by too much concurrency. Folding those in would teach the baseline that
 * congestion is normal, and the limit would climb again. At limit 1 there is nothing left to cut:
 * the origin itself got slower, and that becomes the new baseline. A faster window lowers the
 * mean at once: round trips measured while the process was busy (start-up) must not linger.
 */
export function nextBaseline(
  baseline: RttAverage | undefined,
  limit: number,
  window: AimdWindow,
  settings: AimdSettings,
): RttAverage | undefined {
  const rtt = windowRtt(window);
  if (rtt === undefined) return baseline;
  if (baseline && limit > 1 && isRising(rtt, baseline, settings)) return baseline;
  const average = updateAverage(baseline, rtt, settings.ewmaAlpha);
  return { ...average, meanMs: Math.min(average.meanMs, rtt) };
}
