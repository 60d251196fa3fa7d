// Counts concurrent holders per key (IP, principal) against a maximum; a key's entry exists only while it holds any.

/** Hands out releases while a key is under its maximum; 0 = unlimited (still counted). */
export class KeyedCounter {
  private readonly counts = new Map<string, number>();

  constructor(readonly max: number) {}

  /** A release function when `key` may hold one more, else null. Calling the release twice is harmless. */
  tryAcquire(key: string): (() => void) | null {
    const held = this.counts.get(key) ?? 0;
    if (this.max > 0 && held >= this.max) return null;
    this.counts.set(key, held + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.counts.get(key) ?? 1) - 1;
      if (left <= 0) this.counts.delete(key);
      else this.counts.set(key, left);
    };
  }

  /** What `key` holds now. */
  held(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  /** Keys holding anything (bounded by the open connections or streams they count). */
  get size(): number {
    return this.counts.size;
  }
}
