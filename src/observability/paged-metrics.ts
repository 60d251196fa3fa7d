// Delivery metrics recorded at the cost of a few additions per message: prom-client hashes the label set and
// validates it on every observe/inc, even through a child from `labels()`; these hold one series object per label
// set and write it into prom-client when the registry is scraped (the metric's `collect` hook). The histogram writes
// into prom-client's per-label-set table, which is internal: package.json pins prom-client exactly, and
// paged-metrics.test.ts compares the exposition with plain prom-client recording, so an upgrade that moves it fails.
import { Counter, type CounterConfiguration, Histogram, type HistogramConfiguration } from "prom-client";

type Labels<L extends string> = Partial<Record<L, string | number>>;

/** Key of a label set (done once per stream or page, never per message). */
function labelKey<L extends string>(labelNames: readonly L[], labels: Labels<L>): string {
  // String(): prom-client's own key makes 1 and "1" the same label value, so must this.
  return JSON.stringify(labelNames.map((name) => (labels[name] === undefined ? null : String(labels[name]))));
}

/** One label set of a {@link PagedHistogram}: publish-to-delivery seconds recorded one add and one compare each. */
export class HistogramSeries {
  /** Non-cumulative count per bucket (prom-client's layout); values above the last bound only count. */
  readonly counts: Float64Array;
  /**
   * Running totals, not deltas: added value by value in the order they arrive, as prom-client would, so the sum is
   * the same float to the last bit. Every recording of this label set goes through this one object.
   */
  sum = 0;
  count = 0;
  /** Key of this series in prom-client's table once written there (its first value made it exist). */
  entryKey: string | null = null;

  constructor(
    readonly labels: Record<string, string | number>,
    private readonly bounds: readonly number[],
    private readonly owner: PagedHistogram<string>,
  ) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    if (this.count === 0) this.owner.started(this);
    this.sum += value;
    this.count++;
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= (bounds[i] as number)) {
        this.counts[i]++;
        return;
      }
    }
  }
}

/** prom-client's per-label-set state of a histogram (lib/histogram.js, 15.x); the equality test guards its shape. */
interface HistogramEntry {
  labels: object;
  bucketValues: Record<string, number>;
  sum: number;
  count: number;
}

/**
 * A prom-client histogram whose label sets are resolved once (`labels()`, e.g. per stream) and recorded without
 * prom-client; its name, help, buckets and exposition are the histogram's. Record only through `labels()`.
 */
export class PagedHistogram<L extends string> {
  readonly histogram: Histogram<L>;
  private readonly series = new Map<string, HistogramSeries>();
  /** Series in the order of their first value: the order prom-client would list them in. */
  private readonly recorded: HistogramSeries[] = [];
  private readonly labelNames: readonly L[];
  private readonly bounds: readonly number[];

  constructor(config: HistogramConfiguration<L> & { buckets: number[]; labelNames: readonly L[] }) {
    const self = this;
    this.labelNames = config.labelNames;
    this.bounds = [...config.buckets];
    this.histogram = new Histogram<L>({
      ...config,
      collect() {
        self.flush();
      },
    });
  }

  /** The series of `labels` (validated here, once). */
  labels(labels: Labels<L>): HistogramSeries {
    const key = labelKey(this.labelNames, labels);
    let series = this.series.get(key);
    if (series === undefined) {
      this.histogram.labels(labels); // validates the label names, records nothing
      series = new HistogramSeries(labels as Record<string, string | number>, this.bounds, this);
      this.series.set(key, series as HistogramSeries);
    }
    return series;
  }

  /** @internal A series got its first value. */
  started(series: HistogramSeries): void {
    this.recorded.push(series);
    this.ensureEntry(series);
  }

  private table(): Record<string, HistogramEntry> {
    return (this.histogram as unknown as { hashMap: Record<string, HistogramEntry> }).hashMap;
  }

  /** Creates the series' prom-client entry (in first-value order) unless it is there. */
  private ensureEntry(series: HistogramSeries): HistogramEntry {
    const table = this.table();
    const known = series.entryKey === null ? undefined : table[series.entryKey];
    if (known !== undefined && known.labels === series.labels) return known;
    this.histogram.zero(series.labels as Labels<L>);
    const fresh = this.table();
    for (const key of Object.keys(fresh)) {
      const entry = fresh[key] as HistogramEntry;
      if (entry.labels === series.labels) {
        series.entryKey = key;
        return entry;
      }
    }
    throw new Error("prom-client histogram: no entry after zero()");
  }

  /** Writes every recorded series' totals into prom-client (on scrape). */
  flush(): void {
    for (const series of this.recorded) {
      const entry = this.ensureEntry(series);
      entry.sum = series.sum;
      entry.count = series.count;
      for (let i = 0; i < this.bounds.length; i++)
        entry.bucketValues[this.bounds[i] as number] = series.counts[i] as number;
    }
  }
}

/** One label set of a {@link PagedCounter}: increments add to a pending count written into prom-client on scrape. */
export class CounterSeries {
  pending = 0;
  started = false;

  constructor(
    readonly labels: Record<string, string | number>,
    private readonly owner: PagedCounter<string>,
  ) {}

  inc(value = 1): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    if (value < 0) throw new Error("It is not possible to decrease a counter");
    if (!this.started) this.owner.started(this);
    this.pending += value;
  }
}

/** A prom-client counter whose label sets are resolved once and incremented without prom-client (see above). */
export class PagedCounter<L extends string> {
  readonly counter: Counter<L>;
  private readonly series = new Map<string, CounterSeries>();
  private readonly recorded: CounterSeries[] = [];
  private readonly labelNames: readonly L[];

  constructor(config: CounterConfiguration<L> & { labelNames: readonly L[] }) {
    const self = this;
    this.labelNames = config.labelNames;
    this.counter = new Counter<L>({
      ...config,
      collect() {
        self.flush();
      },
    });
  }

  labels(labels: Labels<L>): CounterSeries {
    const key = labelKey(this.labelNames, labels);
    let series = this.series.get(key);
    if (series === undefined) {
      series = new CounterSeries(labels as Record<string, string | number>, this);
      this.series.set(key, series as CounterSeries);
    }
    return series;
  }

  /** `labels(labels).inc(value)`, for a caller that has no place to keep the series (one lookup per page). */
  inc(labels: Labels<L>, value = 1): void {
    this.labels(labels).inc(value);
  }

  /**
   * @internal A series got its first increment: its prom-client entry is made now (prom-client validates the labels
   * here), so the series are listed in prom-client's order.
   */
  started(series: CounterSeries): void {
    this.counter.inc(series.labels as Labels<L>, 0); // throws for a label prom-client does not know: nothing kept
    series.started = true;
    this.recorded.push(series);
  }

  /** Adds every pending count to prom-client (on scrape). */
  flush(): void {
    for (const series of this.recorded) {
      if (series.pending === 0) continue;
      const value = series.pending;
      series.pending = 0;
      this.counter.inc(series.labels as Labels<L>, value);
    }
  }
}
