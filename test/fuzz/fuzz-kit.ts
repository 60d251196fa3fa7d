// Fuzzing toolkit: a seeded PRNG, byte/string/JSON mutators, a bounded worker pool and a per-family recorder.

/**
 * Base seed of every family: `STREAMGATE_FUZZ_SEED` (decimal or 0x hex, or `random`), else a fixed
 * default so CI runs are reproducible. Each family derives its own stream from it and its name.
 */
export function fuzzSeed(): number {
  const raw = process.env.STREAMGATE_FUZZ_SEED?.trim();
  if (raw === undefined || raw === "") return 0x5eed_2026;
  if (raw === "random") return (Math.random() * 0x1_0000_0000) >>> 0;
  const parsed = Number(raw);
  if (!Number.isFinite(parsed)) throw new Error(`STREAMGATE_FUZZ_SEED must be a number or "random", got ${raw}`);
  return parsed >>> 0;
}

/**
 * Inputs per family: `STREAMGATE_FUZZ_COUNT` (default 2,000; six families make 12,000+ inputs).
 * @param share - this family's share of the count (e.g. 0.25 for a sub-family).
 */
export function fuzzCount(share = 1): number {
  const raw = process.env.STREAMGATE_FUZZ_COUNT?.trim();
  const count = raw === undefined || raw === "" ? 2_000 : Number(raw);
  if (!Number.isInteger(count) || count < 1) throw new Error(`STREAMGATE_FUZZ_COUNT must be a positive integer`);
  return Math.max(1, Math.round(count * share));
}

/** sfc32: a small, fast, well-distributed 32-bit generator; the same seed gives the same inputs. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, stream = "") {
    let h = seed >>> 0;
    for (let i = 0; i < stream.length; i++) h = Math.imul(h ^ stream.charCodeAt(i), 0x9e37_79b1) >>> 0;
    this.a = 0x9e37_79b9;
    this.b = 0x243f_6a88;
    this.c = 0xb7e1_5162;
    this.d = h;
    for (let i = 0; i < 16; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return n <= 1 ? 0 : this.u32() % n;
  }

  /** An integer in [min, max]. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x0a, 0x0d, 0x22, 0x5c, 0x25];
const INTERESTING_U32 = [
  0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0xffff, 0x1_0000, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff,
];

/** One random byte-level mutation (bit flip, interesting byte/int, insert, delete, duplicate, truncate). */
export function mutateBytes(rng: Rng, input: Uint8Array): Buffer {
  const bytes = Buffer.from(input);
  const at = () => rng.int(Math.max(1, bytes.length));
  switch (rng.int(9)) {
    case 0: {
      if (bytes.length === 0) return rng.bytes(rng.range(1, 8));
      const i = at();
      bytes[i] = bytes[i]! ^ (1 << rng.int(8));
      return bytes;
    }
    case 1: {
      if (bytes.length === 0) return Buffer.from([rng.pick(INTERESTING_BYTES)]);
      bytes[at()] = rng.pick(INTERESTING_BYTES);
      return bytes;
    }
    case 2: {
      if (bytes.length < 4) return Buffer.concat([bytes, rng.bytes(4)]);
      bytes.writeUInt32BE(rng.pick(INTERESTING_U32), rng.int(bytes.length - 3));
      return bytes;
    }
    case 3: {
      const i = at();
      return Buffer.concat([bytes.subarray(0, i), rng.bytes(rng.range(1, 16)), bytes.subarray(i)]);
    }
    case 4: {
      const i = at();
      return Buffer.concat([bytes.subarray(0, i), bytes.subarray(i + rng.range(1, 16))]);
    }
    case 5: {
      const i = at();
      const piece = bytes.subarray(i, i + rng.range(1, 32));
      const copies = rng.chance(0.1) ? rng.range(2, 200) : 2;
      return Buffer.concat([
        bytes.subarray(0, i),
        ...Array<Buffer>(copies).fill(piece),
        bytes.subarray(i + piece.length),
      ]);
    }
    case 6:
      return bytes.subarray(0, at());
    case 7: {
      const i = at();
      return Buffer.concat([bytes.subarray(0, i), Buffer.from(rng.pick(NASTY_STRINGS)), bytes.subarray(i)]);
    }
    default: {
      for (let n = rng.range(2, 6); n > 0 && bytes.length > 0; n--) bytes[at()] = rng.int(256);
      return bytes;
    }
  }
}

/** Applies 1..max byte mutations. */
export function mutateBytesMany(rng: Rng, input: Uint8Array, max = 3): Buffer {
  let out: Buffer = Buffer.from(input);
  for (let n = rng.range(1, max); n > 0; n--) out = mutateBytes(rng, out);
  return out;
}

/** Strings that break naive parsers: control characters, lone surrogates, RTL, emoji, format specifiers, huge numbers. */
export const NASTY_STRINGS: readonly string[] = [
  "",
  " ",
  "\u0000",
  "\r\n",
  "\ud800",
  "\udfff",
  "\ufeff",
  "\u202e",
  "\uffff",
  "😀",
  "é",
  "e\u0301",
  "%",
  "%zz",
  "%00",
  "%s%n",
  "../",
  "\\",
  '"',
  "'",
  "{",
  "}",
  "[",
  "]",
  "null",
  "true",
  "-1",
  "0",
  "1e309",
  "-0",
  "18446744073709551616",
  "9007199254740993",
  "NaN",
  "Infinity",
  "0x10",
  "\u00a0",
  "a".repeat(300),
  "<script>",
];

/** A random string mutation: character-level edits or a nasty string spliced in. */
export function mutateString(rng: Rng, input: string): string {
  switch (rng.int(6)) {
    case 0:
      return mutateBytes(rng, Buffer.from(input)).toString("utf8");
    case 1: {
      const i = rng.int(input.length + 1);
      return input.slice(0, i) + rng.pick(NASTY_STRINGS) + input.slice(i);
    }
    case 2:
      return rng.pick(NASTY_STRINGS);
    case 3:
      return input.repeat(rng.range(2, rng.chance(0.2) ? 2_000 : 20));
    case 4:
      return input.slice(0, rng.int(input.length + 1));
    default: {
      const chars = [...input];
      if (chars.length === 0) return rng.pick(NASTY_STRINGS);
      chars[rng.int(chars.length)] = String.fromCodePoint(
        rng.pick([0, 0x7f, 0xd800, 0xfffd, 0x1f600, rng.int(0x11_0000)]),
      );
      return chars.join("");
    }
  }
}

type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Values of the wrong type, or of the right type at an extreme. */
function wrongValue(rng: Rng): JsonValue {
  return rng.pick<() => JsonValue>([
    () => null,
    () => true,
    () => 0,
    () => -1,
    () => 1e308,
    () => -1e308,
    () => 2 ** 64,
    () => 0.5,
    () => Number.MAX_SAFE_INTEGER + 2,
    () => "",
    () => rng.pick(NASTY_STRINGS),
    () => [],
    () => [1, "a", null],
    () => ({}),
    () => ({ nested: { deeper: [null] } }),
    () => "x".repeat(rng.range(1, 70_000)),
  ])();
}

/** One structural mutation of a JSON value: drop, retype, add unknown fields, nest deeply, mutate strings. */
export function mutateJsonValue(rng: Rng, value: JsonValue, depth = 0): JsonValue {
  if (value === null || typeof value !== "object") {
    if (typeof value === "string" && rng.chance(0.5)) return mutateString(rng, value);
    return wrongValue(rng);
  }
  if (Array.isArray(value)) {
    const copy = [...value];
    const op = rng.int(5);
    if (op === 0 || copy.length === 0) return rng.chance(0.5) ? [] : wrongValue(rng);
    const i = rng.int(copy.length);
    if (op === 1) copy.splice(i, 1);
    else if (op === 2) copy.push(...Array<JsonValue>(rng.range(1, rng.chance(0.1) ? 5_000 : 10)).fill(copy[i]!));
    else copy[i] = depth < 6 ? mutateJsonValue(rng, copy[i]!, depth + 1) : wrongValue(rng);
    return copy;
  }
  const copy: { [key: string]: JsonValue } = { ...value };
  const keys = Object.keys(copy);
  const op = rng.int(6);
  if (op === 0 && keys.length > 0) delete copy[rng.pick(keys)];
  else if (op === 1) copy[rng.pick(["unknownField", "__proto__", "constructor", "", "😀", "a.b"])] = wrongValue(rng);
  else if (op === 2 || keys.length === 0) return wrongValue(rng);
  else {
    const key = rng.pick(keys);
    copy[key] = depth < 6 ? mutateJsonValue(rng, copy[key]!, depth + 1) : wrongValue(rng);
  }
  return copy;
}

/**
 * Serializes a JSON value and sometimes damages the text: duplicate keys, deep nesting, truncation,
 * byte noise, trailing garbage, a BOM. Returns the body bytes.
 */
export function mutatedJsonText(rng: Rng, value: JsonValue): Buffer {
  let text = JSON.stringify(rng.chance(0.85) ? mutateJsonValue(rng, value) : value);
  switch (rng.int(10)) {
    case 0: {
      const match = /^\{("[^"]*"):/.exec(text);
      if (match !== null) text = `{${match[1]}:${JSON.stringify(wrongValue(rng))},${text.slice(1)}`;
      break;
    }
    case 1: {
      const depth = rng.pick([64, 1_000, 20_000]);
      text = `${"[".repeat(depth)}${text}${"]".repeat(depth)}`;
      break;
    }
    case 2: {
      const depth = rng.pick([64, 1_000, 10_000]);
      text = `${'{"a":'.repeat(depth)}${text}${"}".repeat(depth)}`;
      break;
    }
    case 3:
      return mutateBytesMany(rng, Buffer.from(text));
    case 4:
      text += rng.pick(["}", " x", "\u0000", "[]", ",", "\n{}"]);
      break;
    case 5:
      text = `\ufeff${text}`;
      break;
    default:
      break;
  }
  return Buffer.from(text);
}

/** Runs `task(i)` for i in [0, count) with at most `concurrency` in flight. */
export async function runPool(
  count: number,
  concurrency: number,
  task: (index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const index = next++;
      await task(index);
    }
  };
  // Settle every worker before failing, so no request is still in flight when the caller tears down.
  const results = await Promise.allSettled(Array.from({ length: Math.min(concurrency, count) }, worker));
  for (const result of results) if (result.status === "rejected") throw result.reason;
}

/** Percent-encodes every byte outside [A-Za-z0-9-._~] (lone surrogates become U+FFFD, as UTF-8 encoding does). */
export function percentEncode(input: string | Uint8Array): string {
  let out = "";
  for (const byte of typeof input === "string" ? Buffer.from(input) : input) {
    const char = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-._~]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** A short, printable description of an input for failure messages. */
export function describeInput(input: Uint8Array | string, max = 400): string {
  if (typeof input === "string")
    return JSON.stringify(input.length > max ? `${input.slice(0, max)}…(${input.length})` : input);
  const head = Buffer.from(input.subarray(0, max));
  return `${input.length} bytes: ${JSON.stringify(head.toString("latin1"))}${input.length > max ? "…" : ""}`;
}

/** Counts outcomes and failures of one family and prints its summary line. */
export class FuzzRecorder {
  readonly seed = fuzzSeed();
  private readonly outcomes = new Map<string, number>();
  private readonly failures: string[] = [];
  private inputs = 0;
  private readonly started = Date.now();

  constructor(readonly family: string) {
    // Printed first, so a run that times out still names its seed.
    console.log(`fuzz ${family}: seed 0x${this.seed.toString(16)}`);
  }

  /** The generator of input `index`: depends only on (seed, family, index), not on scheduling. */
  input(index: number): Rng {
    return new Rng(this.seed, `${this.family}#${index}`);
  }

  /** Records one input's outcome (e.g. "grpc 3", "http 400", "closed"). */
  outcome(name: string): void {
    this.inputs++;
    this.outcomes.set(name, (this.outcomes.get(name) ?? 0) + 1);
  }

  /** Records a broken oracle: what happened, and the input that did it. */
  fail(index: number, what: string, input: string): void {
    this.failures.push(`#${index}: ${what}\n    input: ${input}`);
  }

  get count(): number {
    return this.inputs;
  }

  /** Prints the summary; throws (naming the seed and inputs) when any oracle failed. */
  finish(): void {
    const outcomes = [...this.outcomes.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}: ${v}`);
    console.log(
      `fuzz ${this.family}: ${this.inputs} inputs in ${Date.now() - this.started} ms (seed 0x${this.seed.toString(16)}) — ${outcomes.join(", ")}`,
    );
    if (this.failures.length > 0) {
      throw new Error(
        `fuzz ${this.family}: ${this.failures.length} of ${this.inputs} inputs broke an oracle ` +
          `(reproduce with STREAMGATE_FUZZ_SEED=0x${this.seed.toString(16)} STREAMGATE_FUZZ_COUNT=${process.env.STREAMGATE_FUZZ_COUNT ?? 2000}):\n` +
          this.failures.slice(0, 20).join("\n"),
      );
    }
  }
}
