// Tests for the Pub/Sub filter compiler: matching, precedence, limits and error messages.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code, StreamgateError } from "../errors/index.js";
import { compileFilter, MAX_FILTER_BYTES } from "./filter.js";

function matches(expression: string, attributes: Record<string, string>): boolean {
  return compileFilter(expression)(attributes);
}

function rejects(expression: string, message: string | RegExp): void {
  assert.throws(
    () => compileFilter(expression),
    (error: unknown) => {
      assert.ok(error instanceof StreamgateError);
      assert.equal(error.code, Code.INVALID_ARGUMENT);
      assert.equal(error.details.field, "filter");
      if (typeof message === "string") assert.equal(error.message, message);
      else assert.match(error.message, message);
      return true;
    },
  );
}

describe("filter - matching", () => {
  test("filter - empty or whitespace matches everything", () => {
    assert.equal(matches("", {}), true);
    assert.equal(matches("  \n\t", { a: "b" }), true);
  });

  test("filter - equality and inequality", () => {
    assert.equal(matches('attributes.domain = "com"', { domain: "com" }), true);
    assert.equal(matches('attributes.domain = "com"', { domain: "org" }), false);
    assert.equal(matches('attributes.domain = "com"', {}), false);
    assert.equal(matches('attributes.domain != "com"', { domain: "org" }), true);
    assert.equal(matches('attributes.domain != "com"', { domain: "com" }), false);
    // As in Pub/Sub: != also matches messages that lack the attribute.
    assert.equal(matches('attributes.domain != "com"', {}), true);
    assert.equal(matches('attributes.domain=""', { domain: "" }), true);
  });

  test("filter - has key, with and without NOT", () => {
    assert.equal(matches("attributes:domain", { domain: "" }), true);
    assert.equal(matches("attributes:domain", { other: "x" }), false);
    assert.equal(matches("NOT attributes:domain", { other: "x" }), true);
    assert.equal(matches("-attributes:domain", { domain: "x" }), false);
    assert.equal(matches("NOT NOT attributes:domain", { domain: "x" }), true);
  });

  test("filter - hasPrefix", () => {
    const filter = compileFilter('hasPrefix(attributes.name, "co")');
    assert.equal(filter({ name: "com" }), true);
    assert.equal(filter({ name: "co" }), true);
    assert.equal(filter({ name: "c" }), false);
    assert.equal(filter({}), false);
    assert.equal(matches('NOT hasPrefix( attributes.name , "co" )', { name: "org" }), true);
    assert.equal(matches('hasPrefix(attributes.name, "")', { name: "x" }), true);
  });

  test("filter - keys with hyphens, digits and quoted keys", () => {
    assert.equal(matches('attributes.ce-type = "x"', { "ce-type": "x" }), true);
    assert.equal(matches("attributes:123_a", { "123_a": "" }), true);
    assert.equal(matches('attributes."iana.org/language_tag" = "en"', { "iana.org/language_tag": "en" }), true);
    assert.equal(matches("attributes:'my key'", { "my key": "1" }), true);
    assert.equal(matches('hasPrefix(attributes."a b", "x")', { "a b": "xy" }), true);
  });

  test("filter - keys are case-sensitive and never hit the prototype", () => {
    assert.equal(matches('attributes.Domain = "com"', { domain: "com" }), false);
    assert.equal(matches("attributes:constructor", {}), false);
    assert.equal(matches("attributes:__proto__", {}), false);
    assert.equal(matches('attributes.toString != "x"', {}), true);
  });

  test("filter - string literals with single quotes and escapes", () => {
    assert.equal(matches("attributes.a = 'it\\'s'", { a: "it's" }), true);
    assert.equal(matches('attributes.a = "say \\"hi\\""', { a: 'say "hi"' }), true);
    assert.equal(matches('attributes.a = "back\\\\slash"', { a: "back\\slash" }), true);
    assert.equal(matches('attributes.a = "tab\\there\\n"', { a: "tab\there\n" }), true);
    assert.equal(matches('attributes.a = "\\x41\\u00e9\\U0001F600\\101"', { a: "Aé😀A" }), true);
    assert.equal(matches('attributes.a = "single \' inside"', { a: "single ' inside" }), true);
  });

  test("filter - AND chains and OR chains", () => {
    const both = compileFilter("attributes:a AND attributes:b AND attributes:c");
    assert.equal(both({ a: "", b: "", c: "" }), true);
    assert.equal(both({ a: "", b: "" }), false);
    const either = compileFilter("attributes:a OR attributes:b OR attributes:c");
    assert.equal(either({ c: "" }), true);
    assert.equal(either({}), false);
  });

  test("filter - NOT binds tighter than AND and OR", () => {
    // (NOT a) AND b, not NOT (a AND b)
    assert.equal(matches("NOT attributes:a AND attributes:b", { b: "" }), true);
    assert.equal(matches("NOT attributes:a AND attributes:b", {}), false);
    assert.equal(matches("-attributes:a OR attributes:b", { a: "" }), false);
  });

  test("filter - parentheses group mixed AND and OR", () => {
    const filter = compileFilter('attributes:lang AND (attributes.lang = "en" OR attributes.lang = "fr")');
    assert.equal(filter({ lang: "fr" }), true);
    assert.equal(filter({ lang: "de" }), false);
    const nested = compileFilter("(attributes:a OR attributes:b) AND NOT (attributes:c AND (attributes:d))");
    assert.equal(nested({ a: "", c: "" }), true);
    assert.equal(nested({ b: "", c: "", d: "" }), false);
    assert.equal(nested({ c: "" }), false);
  });

  test("filter - the documented example", () => {
    const filter = compileFilter('attributes:"iana.org/language_tag" AND NOT attributes:name AND NOT attributes:value');
    assert.equal(filter({ "iana.org/language_tag": "en" }), true);
    assert.equal(filter({ "iana.org/language_tag": "en", name: "x" }), false);
  });
});

describe("filter - errors", () => {
  test("filter - a wrong comparison operator names the token and position", () => {
    rejects('attributes.ab == "x"', 'filter: unexpected token "==" at position 14; expected "=" or "!="');
    rejects('attributes.ab < "x"', /unexpected token "<" at position 14; expected "=" or "!="/);
  });

  test("filter - mixing AND and OR without parentheses is rejected", () => {
    rejects("attributes:a AND attributes:b OR attributes:c", /cannot mix AND and OR without parentheses.*position 30/);
    rejects("attributes:a OR attributes:b AND attributes:c", /cannot mix AND and OR/);
    rejects("(attributes:a OR attributes:b AND attributes:c)", /cannot mix AND and OR/);
  });

  test("filter - lowercase operators are not keywords", () => {
    rejects(
      "attributes:a and attributes:b",
      'filter: unexpected token "and" at position 13; expected "AND", "OR" or the end of the filter',
    );
    rejects(
      "not attributes:a",
      /unexpected token "not" at position 0; expected "attributes", "hasPrefix", "NOT", "-" or "\("/,
    );
  });

  test("filter - incomplete expressions", () => {
    rejects("attributes:a AND", /unexpected end of filter at position 16; expected "attributes"/);
    rejects("(attributes:a", /unexpected end of filter at position 13; expected "AND", "OR" or "\)"/);
    rejects("attributes:a)", /unexpected token "\)" at position 12/);
    rejects("attributes.a =", /unexpected end of filter at position 14; expected a string literal/);
    rejects("attributes", /unexpected end of filter at position 10; expected "\." or ":"/);
    rejects("attributes.", /unexpected end of filter at position 11; expected an attribute key/);
    rejects("NOT", /unexpected end of filter/);
    rejects("()", /unexpected token "\)" at position 1/);
  });

  test("filter - values must be string literals", () => {
    rejects("attributes.a = 5", /unexpected token "5" at position 15; expected a string literal/);
    rejects("attributes.a = b", /expected a string literal/);
  });

  test("filter - implicit AND and unknown identifiers are rejected", () => {
    rejects("attributes:a attributes:b", /unexpected token "attributes" at position 13/);
    rejects('data = "x"', /unexpected token "data" at position 0/);
    rejects('hasSuffix(attributes.a, "x")', /unexpected token "hasSuffix"/);
    rejects('hasPrefix(labels.a, "x")', /unexpected token "labels" at position 10; expected "attributes"/);
    rejects("hasPrefix(attributes.a)", /unexpected token "\)" at position 22; expected ","/);
    rejects('attributes:a = "x"', /unexpected token "=" at position 13; expected "AND", "OR"/);
  });

  test("filter - bad string literals", () => {
    rejects('attributes.a = "open', "filter: unterminated string literal starting at position 15");
    rejects("attributes.a = 'open\"", /unterminated string literal starting at position 15/);
    rejects('attributes.a = "\\q"', 'filter: invalid escape sequence "\\\\q" at position 16');
    rejects('attributes.a = "\\x4"', /invalid escape sequence/);
    rejects('attributes.a = "\\uD800"', /invalid escape sequence/);
    rejects('attributes.a = "\\', /unterminated string literal/);
  });

  test("filter - unexpected characters", () => {
    rejects("attributes:a && attributes:b", /unexpected token "&&" at position 13/);
    rejects("attributes:a # comment", 'filter: unexpected character "#" at position 13');
  });

  test("filter - at most 256 bytes, counted in UTF-8", () => {
    const key = "k".repeat(MAX_FILTER_BYTES - "attributes:".length);
    assert.equal(matches(`attributes:${key}`, { [key]: "" }), true);
    rejects(`attributes:${key}x`, "filter: must be at most 256 bytes, got 257");
    const value = "é".repeat(120); // 240 bytes, 120 characters
    rejects(`attributes.a = "${value}"`, /must be at most 256 bytes, got 257/);
  });
});

describe("filter - property: compiled filters agree with a reference evaluator", () => {
  // A tiny AST generated at random, printed as a filter and evaluated directly.
  type Node =
    | { kind: "has" | "eq" | "ne" | "prefix"; key: string; value: string }
    | { kind: "not"; operand: Node; dash: boolean }
    | { kind: "and" | "or"; operands: Node[] };

  const keys = ["a", "b", "c-d", "e f"];
  const values = ["", "x", "xy", "y", 'q"'];

  function makeRandom(seed: number): () => number {
    let state = seed >>> 0;
    return () => {
      state = (state * 1664525 + 1013904223) >>> 0;
      return state / 2 ** 32;
    };
  }

  function generate(random: () => number, depth: number): Node {
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const roll = random();
    if (depth === 0 || roll < 0.4) {
      return { kind: pick(["has", "eq", "ne", "prefix"] as const), key: pick(keys), value: pick(values) };
    }
    if (roll < 0.55) return { kind: "not", operand: generate(random, depth - 1), dash: random() < 0.5 };
    const count = 2 + Math.floor(random() * 2);
    const operands = Array.from({ length: count }, () => generate(random, depth - 1));
    return { kind: random() < 0.5 ? "and" : "or", operands };
  }

  function quote(text: string): string {
    return `"${text.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
  }

  function print(node: Node): string {
    const key = (name: string) => (/^[A-Za-z0-9_-]+$/.test(name) ? name : quote(name));
    switch (node.kind) {
      case "has":
        return `attributes:${key(node.key)}`;
      case "eq":
        return `attributes.${key(node.key)} = ${quote(node.value)}`;
      case "ne":
        return `attributes.${key(node.key)} != ${quote(node.value)}`;
      case "prefix":
        return `hasPrefix(attributes.${key(node.key)}, ${quote(node.value)})`;
      case "not":
        return node.dash ? `-(${print(node.operand)})` : `NOT (${print(node.operand)})`;
      case "and":
      case "or":
        return `(${node.operands.map(print).join(node.kind === "and" ? " AND " : " OR ")})`;
    }
  }

  function evaluate(node: Node, attributes: Map<string, string>): boolean {
    switch (node.kind) {
      case "has":
        return attributes.has(node.key);
      case "eq":
        return attributes.get(node.key) === node.value;
      case "ne":
        return attributes.get(node.key) !== node.value;
      case "prefix":
        return attributes.get(node.key)?.startsWith(node.value) ?? false;
      case "not":
        return !evaluate(node.operand, attributes);
      case "and":
        return node.operands.every((operand) => evaluate(operand, attributes));
      case "or":
        return node.operands.some((operand) => evaluate(operand, attributes));
    }
  }

  test("filter - 500 random filters over 20 random attribute maps each", () => {
    const random = makeRandom(20240601);
    let compiled = 0;
    for (let round = 0; round < 500; round++) {
      const node = generate(random, 3);
      const expression = print(node);
      if (new TextEncoder().encode(expression).length > MAX_FILTER_BYTES) continue;
      const filter = compileFilter(expression);
      compiled++;
      for (let sample = 0; sample < 20; sample++) {
        const attributes = new Map<string, string>();
        for (const key of keys) if (random() < 0.6) attributes.set(key, values[Math.floor(random() * values.length)]!);
        const actual = filter(Object.fromEntries(attributes));
        assert.equal(actual, evaluate(node, attributes), `${expression} on ${JSON.stringify([...attributes])}`);
      }
    }
    assert.ok(compiled > 200, `only ${compiled} filters fit in ${MAX_FILTER_BYTES} bytes`);
  });
});
