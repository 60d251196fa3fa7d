// Small statistics helpers for benchmarks: median, percentiles, and a bounded latency recorder.

/** Median of the values (mean of the two middle ones for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** The `p`-th percentile (0–100, nearest rank) of already sorted values; NaN for none. */
export function percentileSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** Latency summary in milliseconds. */
export interface LatencySummary {
  /** Number of samples. */
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

/**
 * Collects latency samples in a preallocated buffer (no allocation per sample) and summarizes them.
 * Samples past `capacity` are dropped and counted, so a runaway run cannot grow memory.
 */
export class LatencyRecorder {
  readonly #samples: Float64Array;
  #count = 0;
  #dropped = 0;

  /** @param capacity Maximum number of samples kept. */
  constructor(capacity: number) {
    this.#samples = new Float64Array(capacity);
  }

  /** Records one latency in milliseconds. */
  record(latencyMs: number): void {
    if (this.#count < this.#samples.length) this.#samples[this.#count++] = latencyMs;
    else this.#dropped++;
  }

  /** Samples recorded so far (kept ones only). */
  get count(): number {
    return this.#count;
  }

  /** Samples that did not fit. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Percentiles over the kept samples. */
  summarize(): LatencySummary {
    const sorted = this.#samples.slice(0, this.#count).sort();
    const values = Array.from(sorted);
    return {
      count: this.#count,
      p50Ms: percentileSorted(values, 50),
      p90Ms: percentileSorted(values, 90),
      p99Ms: percentileSorted(values, 99),
      maxMs: values.length > 0 ? values[values.length - 1]! : Number.NaN,
    };
  }
}

/** Rounds to a number of significant-looking decimals for reports (keeps integers whole). */
export function round(value: number, decimals = 2): number {
  if (!Number.isFinite(value)) return value;
  const factor = 10 ** decimals;
  return Math.round(value * factor) / factor;
}
