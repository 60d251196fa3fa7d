// Pub/Sub subscription filters: a hand-written recursive-descent parser compiled to a predicate on attributes.
import { errors } from "../errors/index.js";

/** A compiled filter: true when a message with these attributes should be delivered. */
export type AttributeFilter = (attributes: Record<string, string>) => boolean;

/** Pub/Sub's limit on a filter expression, in UTF-8 bytes. */
export const MAX_FILTER_BYTES = 256;

const FIELD = "filter";
const encoder = new TextEncoder();

/**
 * Parses a Pub/Sub filter expression once and returns a predicate over message attributes.
 *
 * Grammar (Pub/Sub "Filter messages from a subscription"):
 * ```
 * filter    := term ( ("AND" term)* | ("OR" term)* )      AND and OR never mix without parentheses
 * term      := ("NOT" | "-") term | "(" filter ")" | predicate
 * predicate := "attributes" "." key ("=" | "!=") string
 *            | "attributes" ":" key
 *            | "hasPrefix" "(" "attributes" "." key "," string ")"
 * key       := [A-Za-z0-9_-]+ | string
 * string    := "…" | '…'   with C-style escapes (\n, \", \\, \xHH, \uHHHH, \UHHHHHHHH, \NNN octal)
 * ```
 * Operators are upper case. `attributes.k != "v"` matches messages without `k`, as in Pub/Sub.
 * An empty or whitespace-only expression matches every message.
 *
 * @throws StreamgateError INVALID_ARGUMENT naming field `filter`, the 0-based character position and
 *   the offending token, or the 256-byte limit.
 */
export function compileFilter(expression: string): AttributeFilter {
  const bytes = encoder.encode(expression).length;
  if (bytes > MAX_FILTER_BYTES) {
    throw errors.invalidArgument(FIELD, `must be at most ${MAX_FILTER_BYTES} bytes, got ${bytes}`);
  }
  if (expression.trim() === "") return () => true;
  return new Parser(expression).parseFilter();
}

type TokenKind = "word" | "string" | "operator" | "punctuation" | "end";

interface Token {
  kind: TokenKind;
  /** The source text of the token (for strings, including quotes). */
  text: string;
  /** The decoded value of a string literal; the text otherwise. */
  value: string;
  /** 0-based character offset in the expression. */
  position: number;
}

const OPERATOR_CHARS = /[=!<>~&|]/;
const WORD_CHAR = /[A-Za-z0-9_]/;
const KEY_CHAR = /[A-Za-z0-9_-]/;
const PUNCTUATION = "().,:-";

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  a: "\x07",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  v: "\v",
  "\\": "\\",
  '"': '"',
  "'": "'",
  "`": "`",
  "?": "?",
};

/** A scanner and parser in one: tokens are read on demand, so keys can use their own lexical rule. */
class Parser {
  private position = 0;
  private lookahead: Token | undefined;

  constructor(private readonly source: string) {}

  parseFilter(): AttributeFilter {
    const filter = this.parseExpression();
    this.expectEnd();
    return filter;
  }

  private parseExpression(): AttributeFilter {
    const first = this.parseTerm();
    const next = this.peek();
    if (!isWord(next, "AND") && !isWord(next, "OR")) return first;

    const operator = next.text;
    const operands = [first];
    while (isWord(this.peek(), operator)) {
      this.next();
      operands.push(this.parseTerm());
    }
    const after = this.peek();
    if (isWord(after, "AND") || isWord(after, "OR")) {
      throw this.error(
        `cannot mix AND and OR without parentheses: "${after.text}" at position ${after.position} follows "${operator}"; ` +
          `wrap one side in parentheses, e.g. "a ${operator} (b ${after.text} c)"`,
      );
    }
    return operator === "AND" ? all(operands) : any(operands);
  }

  private parseTerm(): AttributeFilter {
    const token = this.peek();
    if (isWord(token, "NOT") || (token.kind === "punctuation" && token.text === "-")) {
      this.next();
      const operand = this.parseTerm();
      return (attributes) => !operand(attributes);
    }
    if (token.kind === "punctuation" && token.text === "(") {
      this.next();
      const inner = this.parseExpression();
      this.expectPunctuation(")", '"AND", "OR" or ")"');
      return inner;
    }
    if (isWord(token, "attributes")) return this.parseAttributePredicate();
    if (isWord(token, "hasPrefix")) return this.parseHasPrefix();
    throw this.unexpected(token, '"attributes", "hasPrefix", "NOT", "-" or "("');
  }

  private parseAttributePredicate(): AttributeFilter {
    this.next(); // "attributes"
    const separator = this.peek();
    if (separator.kind === "punctuation" && separator.text === ":") {
      this.next();
      const key = this.readKey();
      return (attributes) => Object.hasOwn(attributes, key);
    }
    if (separator.kind !== "punctuation" || separator.text !== ".") {
      throw this.unexpected(separator, '"." or ":"');
    }
    this.next();
    const key = this.readKey();
    const operator = this.next();
    if (operator.kind !== "operator" || (operator.text !== "=" && operator.text !== "!=")) {
      throw this.unexpected(operator, '"=" or "!="');
    }
    const value = this.expectString();
    const equals = (attributes: Record<string, string>) => Object.hasOwn(attributes, key) && attributes[key] === value;
    return operator.text === "=" ? equals : (attributes) => !equals(attributes);
  }

  private parseHasPrefix(): AttributeFilter {
    this.next(); // "hasPrefix"
    this.expectPunctuation("(", '"("');
    const subject = this.next();
    if (!isWord(subject, "attributes")) throw this.unexpected(subject, '"attributes"');
    this.expectPunctuation(".", '"."');
    const key = this.readKey();
    this.expectPunctuation(",", '","');
    const prefix = this.expectString();
    this.expectPunctuation(")", '")"');
    return (attributes) => Object.hasOwn(attributes, key) && attributes[key]!.startsWith(prefix);
  }

  /** Reads an attribute key: a string literal, or letters, digits, "_" and "-". */
  private readKey(): string {
    if (this.lookahead !== undefined) throw new Error("filter parser: readKey after peek"); // parser bug guard
    this.skipWhitespace();
    const start = this.position;
    const first = this.source[start];
    if (first === '"' || first === "'") return this.readString().value;
    while (this.position < this.source.length && KEY_CHAR.test(this.source[this.position]!)) this.position++;
    if (this.position === start) {
      throw this.unexpected(this.next(), "an attribute key (letters, digits, _ and -, or a quoted string)");
    }
    return this.source.slice(start, this.position);
  }

  private expectString(): string {
    const token = this.next();
    if (token.kind !== "string") throw this.unexpected(token, "a string literal");
    return token.value;
  }

  private expectPunctuation(text: string, expected: string): void {
    const token = this.next();
    if (token.kind !== "punctuation" || token.text !== text) throw this.unexpected(token, expected);
  }

  private expectEnd(): void {
    const token = this.peek();
    if (token.kind !== "end") throw this.unexpected(token, '"AND", "OR" or the end of the filter');
  }

  private peek(): Token {
    this.lookahead ??= this.scan();
    return this.lookahead;
  }

  private next(): Token {
    const token = this.peek();
    this.lookahead = undefined;
    return token;
  }

  private scan(): Token {
    this.skipWhitespace();
    const start = this.position;
    const source = this.source;
    if (start >= source.length) return { kind: "end", text: "", value: "", position: start };
    const char = source[start]!;
    if (char === '"' || char === "'") return this.readString();
    if (PUNCTUATION.includes(char)) {
      this.position++;
      return { kind: "punctuation", text: char, value: char, position: start };
    }
    const run = WORD_CHAR.test(char) ? WORD_CHAR : OPERATOR_CHARS.test(char) ? OPERATOR_CHARS : undefined;
    if (run === undefined) {
      throw this.error(`unexpected character ${JSON.stringify(char)} at position ${start}`);
    }
    while (this.position < source.length && run.test(source[this.position]!)) this.position++;
    const text = source.slice(start, this.position);
    return { kind: run === WORD_CHAR ? "word" : "operator", text, value: text, position: start };
  }

  private readString(): Token {
    const source = this.source;
    const start = this.position;
    const quote = source[start]!;
    let value = "";
    let index = start + 1;
    while (index < source.length && source[index] !== quote) {
      const char = source[index]!;
      if (char !== "\\") {
        value += char;
        index++;
        continue;
      }
      const [decoded, length] = this.decodeEscape(index);
      value += decoded;
      index += length;
    }
    if (index >= source.length) throw this.error(`unterminated string literal starting at position ${start}`);
    this.position = index + 1;
    return { kind: "string", text: source.slice(start, this.position), value, position: start };
  }

  /** Decodes the escape sequence starting at the backslash at `index`; returns [text, source length]. */
  private decodeEscape(index: number): [string, number] {
    const source = this.source;
    const letter = source[index + 1];
    if (letter === undefined)
      throw this.error(`unterminated string literal: "\\" at position ${index} ends the filter`);
    const simple = SIMPLE_ESCAPES[letter];
    if (simple !== undefined) return [simple, 2];
    const hexDigits = letter === "x" ? 2 : letter === "u" ? 4 : letter === "U" ? 8 : 0;
    if (hexDigits > 0) {
      const digits = source.slice(index + 2, index + 2 + hexDigits);
      const codePoint = /^[0-9A-Fa-f]+$/.test(digits) && digits.length === hexDigits ? Number.parseInt(digits, 16) : -1;
      if (codePoint < 0 || codePoint > 0x10ffff || (codePoint >= 0xd800 && codePoint <= 0xdfff)) {
        throw this.invalidEscape(index, 2 + hexDigits);
      }
      return [String.fromCodePoint(codePoint), 2 + hexDigits];
    }
    const octal = source.slice(index + 1, index + 4);
    if (/^[0-3][0-7]{2}$/.test(octal)) return [String.fromCodePoint(Number.parseInt(octal, 8)), 4];
    throw this.invalidEscape(index, 2);
  }

  private invalidEscape(index: number, length: number): Error {
    const text = this.source.slice(index, index + length);
    return this.error(`invalid escape sequence ${JSON.stringify(text)} at position ${index}`);
  }

  private skipWhitespace(): void {
    while (this.position < this.source.length && /\s/.test(this.source[this.position]!)) this.position++;
  }

  private unexpected(token: Token, expected: string): Error {
    const what =
      token.kind === "end"
        ? "end of filter"
        : token.kind === "string"
          ? `string literal ${token.text}`
          : `token ${JSON.stringify(token.text)}`;
    return this.error(`unexpected ${what} at position ${token.position}; expected ${expected}`);
  }

  private error(message: string): Error {
    return errors.invalidArgument(FIELD, message);
  }
}

function isWord(token: Token, word: string): boolean {
  return token.kind === "word" && token.text === word;
}

function all(operands: AttributeFilter[]): AttributeFilter {
  return (attributes) => {
    for (const operand of operands) if (!operand(attributes)) return false;
    return true;
  };
}

function any(operands: AttributeFilter[]): AttributeFilter {
  return (attributes) => {
    for (const operand of operands) if (operand(attributes)) return true;
    return false;
  };
}
