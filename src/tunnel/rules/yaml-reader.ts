// A strict reader over a parsed YAML document: typed field access that records problems with line and field path.
import { isAlias, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, Scalar, type YAMLMap } from "yaml";
import { RulesError, type RulesProblem } from "./rules-error.js";

/** A YAML map whose keys were checked against the allowed ones. */
export interface MapView {
  readonly node: YAMLMap;
  /**
   * The value node of `key` (aliases resolved). A present key with no value gives a null scalar; an absent
   * key gives a placeholder at the map's line that readers report as "is required".
   */
  get(key: string): Node;
  has(key: string): boolean;
  /** Keys in file order. */
  keys(): string[];
}

/** Reads one document; every problem found is kept and thrown together by {@link YamlReader.finish}. */
export class YamlReader {
  readonly problems: RulesProblem[] = [];
  readonly root: Node | null;
  private readonly lines = new LineCounter();
  private readonly document;

  constructor(
    text: string,
    readonly source: string,
  ) {
    this.document = parseDocument(text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
    for (const error of this.document.errors) {
      const line = this.lines.linePos(error.pos[0]).line;
      this.problems.push({ source, line, field: "", problem: `YAML: ${firstLine(error.message)}` });
    }
    this.root = this.document.errors.length > 0 ? null : this.resolve(this.document.contents as Node | null);
  }

  /** 1-based line where `node` starts (1 for a missing node). */
  line(node: Node | null | undefined): number {
    const offset = node?.range?.[0];
    return offset === undefined ? 1 : this.lines.linePos(offset).line;
  }

  /** Records a problem at `node`'s line. */
  fail(node: Node | null | undefined, field: string, problem: string): void {
    this.problems.push({ source: this.source, line: this.line(node), field, problem });
  }

  /** Records a problem at a given line. */
  failAt(line: number, field: string, problem: string): void {
    this.problems.push({ source: this.source, line, field, problem });
  }

  /** Throws a RulesError when any problem was recorded, sorted by line. */
  finish(): void {
    if (this.problems.length === 0) return;
    const sorted = [...this.problems].sort((a, b) => a.line - b.line);
    throw new RulesError(sorted);
  }

  private resolve(node: Node | null | undefined): Node | null {
    if (node === null || node === undefined) return null;
    if (isAlias(node)) return (node.resolve(this.document) as Node | undefined) ?? null;
    return node;
  }

  /** True for an absent or empty (`key:` with nothing after it / `~` / `null`) value. */
  isEmpty(node: Node | null | undefined): boolean {
    return node === null || node === undefined || (isScalar(node) && node.value === null);
  }

  /** Reports `node` as required when it stands for an absent key; true if so. */
  private absent(node: Node | null | undefined, field: string): boolean {
    if (node === null || node === undefined || !missing.has(node)) return false;
    this.fail(node, field, "is required");
    return true;
  }

  /** Reads a map, reporting keys not in `allowed`; null (after a problem) when `node` is not a map. */
  map(node: Node | null | undefined, field: string, allowed: readonly string[]): MapView | null {
    if (this.absent(node, field)) return null;
    if (!isMap(node)) {
      this.fail(node, field, `expected a map, got ${describe(node)}`);
      return null;
    }
    const values = new Map<string, Node>();
    for (const pair of node.items) {
      const keyNode = this.resolve(pair.key as Node | null);
      const key = isScalar(keyNode) ? keyNode.value : undefined;
      if (typeof key !== "string") {
        this.fail(keyNode, field, `keys must be strings, got ${describe(keyNode)}`);
        continue;
      }
      if (!allowed.includes(key)) {
        const known = allowed.length === 0 ? "" : ` (known keys: ${allowed.join(", ")})`;
        this.fail(keyNode, join(field, key), `unknown key${known}`);
        continue;
      }
      values.set(key, this.resolve(pair.value as Node | null) ?? emptyValue(keyNode));
    }
    return {
      node,
      get: (key) => values.get(key) ?? missingValue(node),
      has: (key) => values.has(key),
      keys: () => [...values.keys()],
    };
  }

  /** Reads a map whose keys are free-form (e.g. header names); null when `node` is not a map. */
  entries(node: Node | null | undefined, field: string): { key: string; keyNode: Node; value: Node }[] | null {
    if (this.absent(node, field)) return null;
    if (!isMap(node)) {
      this.fail(node, field, `expected a map, got ${describe(node)}`);
      return null;
    }
    const result: { key: string; keyNode: Node; value: Node }[] = [];
    for (const pair of node.items) {
      const keyNode = this.resolve(pair.key as Node | null);
      const key = isScalar(keyNode) ? keyNode.value : undefined;
      if (typeof key !== "string" || keyNode === null) {
        this.fail(keyNode, field, `keys must be strings, got ${describe(keyNode)}`);
        continue;
      }
      result.push({ key, keyNode, value: this.resolve(pair.value as Node | null) ?? emptyValue(keyNode) });
    }
    return result;
  }

  /**
   * Reads a list; null (after a problem) when `node` is not one. With `emptyAsNone`, a key with no value
   * (`rules:` with every entry commented out) is an empty list.
   */
  list(
    node: Node | null | undefined,
    field: string,
    options: { nonEmpty?: boolean; emptyAsNone?: boolean } = {},
  ): Node[] | null {
    if (this.absent(node, field)) return null;
    if (options.emptyAsNone && this.isEmpty(node)) return [];
    if (!isSeq(node)) {
      this.fail(node, field, `expected a list, got ${describe(node)}`);
      return null;
    }
    if (options.nonEmpty && node.items.length === 0) {
      this.fail(node, field, "must not be empty");
      return null;
    }
    return node.items.map((item) => this.resolve(item as Node | null) ?? emptyValue(node));
  }

  /** Reads a non-empty string; null (after a problem) otherwise. */
  string(node: Node | null | undefined, field: string): string | null {
    if (this.absent(node, field)) return null;
    if (!isScalar(node) || typeof node.value !== "string") {
      const hint = isScalar(node) && node.value !== null ? ` (quote it: "${String(node.value)}")` : "";
      this.fail(node, field, `expected a string, got ${describe(node)}${hint}`);
      return null;
    }
    if (node.value === "") {
      this.fail(node, field, "must not be empty");
      return null;
    }
    return node.value;
  }

  /** Reads a string that may be empty. */
  optionalText(node: Node | null | undefined, field: string): string | null {
    if (isScalar(node) && node.value === "") return "";
    return this.string(node, field);
  }

  /** Reads an integer in `[min, max]`; null (after a problem) otherwise. */
  integer(node: Node | null | undefined, field: string, min: number, max: number): number | null {
    if (this.absent(node, field)) return null;
    if (!isScalar(node) || typeof node.value !== "number" || !Number.isSafeInteger(node.value)) {
      this.fail(node, field, `expected an integer, got ${describe(node)}`);
      return null;
    }
    if (node.value < min || node.value > max) {
      this.fail(node, field, `must be between ${min} and ${max}, got ${node.value}`);
      return null;
    }
    return node.value;
  }

  /** Reads one of `choices`; null (after a problem) otherwise. */
  choice<C extends string>(node: Node | null | undefined, field: string, choices: readonly C[]): C | null {
    const value = this.string(node, field);
    if (value === null) return null;
    if (!(choices as readonly string[]).includes(value)) {
      this.fail(node, field, `expected one of ${choices.join(", ")}, got ${JSON.stringify(value)}`);
      return null;
    }
    return value as C;
  }
}

/** `parent.key`, or `key` at the top. */
export function join(parent: string, key: string): string {
  return parent === "" ? key : `${parent}.${key}`;
}

/** How a value is named in problems: `42`, `"text"`, `true`, `nothing`, `a map`, `a list`. */
export function describe(node: Node | null | undefined): string {
  if (node === null || node === undefined) return "nothing";
  if (isMap(node)) return "a map";
  if (isSeq(node)) return "a list";
  if (isScalar(node)) {
    const value = node.value;
    if (value === null) return "nothing";
    if (typeof value === "string") return JSON.stringify(value);
    return String(value);
  }
  return "an unsupported value";
}

const missing = new WeakSet<Node>();

/** A placeholder for an absent key, at the line of the map that lacks it. */
function missingValue(map: Node): Node {
  const node = emptyValue(map);
  missing.add(node);
  return node;
}

/** A null scalar placed where a key had no value, so problems about it point at the key's line. */
function emptyValue(at: Node | null): Node {
  const node = new Scalar(null);
  if (at?.range) node.range = [at.range[0], at.range[1], at.range[2]];
  return node;
}

function firstLine(message: string): string {
  return message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
}
