// A deep copy of plain data, as engines hand out their resources (a topic's config): structuredClone's result
// for objects, arrays and primitives, without its serializer (which costs a few microseconds on every GetTopic).

/**
 * Deep-copies `value`: plain objects (own enumerable string keys) and arrays are copied member by member,
 * primitives returned as they are; anything else (a Date, Map, typed array, class instance) is copied by
 * `structuredClone`, so the result is what `structuredClone(value)` gives for the data engines keep.
 */
export function clonePlain<T>(value: T): T {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    const out = new Array(value.length);
    for (let index = 0; index < value.length; index++) out[index] = clonePlain(value[index]);
    return out as T;
  }
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return structuredClone(value);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) out[key] = clonePlain((value as Record<string, unknown>)[key]);
  return out as T;
}
