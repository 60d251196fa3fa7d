// A fixed-capacity ring of samples, oldest first: the dashboard's history keeps one per topic and subscription.

/** A bounded series: pushing past `capacity` evicts the oldest sample, so memory never grows. */
export interface SampleRing<T> {
  readonly capacity: number;
  /** Samples held now (at most `capacity`). */
  readonly size: number;
  /** Appends `sample`; when full, the oldest one is dropped. */
  push(sample: T): void;
  /** The samples, oldest first (a copy). */
  values(): T[];
  /** The newest sample, or undefined when empty. */
  latest(): T | undefined;
}

/** Creates an empty ring holding at most `capacity` samples (an integer >= 1). */
export function createSampleRing<T>(capacity: number): SampleRing<T> {
  if (!Number.isInteger(capacity) || capacity < 1) {
    throw new RangeError(`sample ring capacity must be an integer >= 1, got ${capacity}`);
  }
  const slots: (T | undefined)[] = new Array(capacity);
  /** Index the next push writes to. */
  let next = 0;
  let size = 0;
  return {
    capacity,
    get size() {
      return size;
    },
    push(sample) {
      slots[next] = sample;
      next = (next + 1) % capacity;
      if (size < capacity) size += 1;
    },
    values() {
      const start = (next - size + capacity) % capacity;
      const out: T[] = [];
      for (let index = 0; index < size; index++) out.push(slots[(start + index) % capacity] as T);
      return out;
    },
    latest() {
      return size === 0 ? undefined : slots[(next - 1 + capacity) % capacity];
    },
  };
}
