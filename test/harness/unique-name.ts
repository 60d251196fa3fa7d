// Unique Pub/Sub resource ids per test, so tests can share one server and run in parallel.
let counter = 0;

/**
 * A valid Pub/Sub resource id (starts with a letter, 3..255 chars) that no other test in any process uses.
 * @param prefix - a readable prefix starting with a letter, e.g. "orders".
 */
export function uniqueName(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}-${Math.random().toString(36).slice(2, 8)}`;
}
