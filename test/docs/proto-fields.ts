// Lists the fields of every message in a .proto file (nested messages as `Outer.Inner.field`), for doc coverage tests.

/** One message field: its qualified name (`Topic.kms_key_name`) and its type as written. */
export interface ProtoField {
  name: string;
  type: string;
}

/**
 * Parses the messages of `source` (proto3 text): nested messages, oneofs and maps included; enums, services,
 * options and reserved ranges are skipped.
 */
export function protoMessageFields(source: string): ProtoField[] {
  // Comments go (strings are kept whole: a URL's "//" is no comment), then field options (`[...]`, whose
  // `{ type: ... }` values would read as blocks).
  const text = source
    .replace(/"(?:[^"\\]|\\.)*"|\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, (match) => (match.startsWith('"') ? match : ""))
    .replace(/\[[^\]]*\]/g, "");
  const tokens = text.match(/[{};]|"(?:[^"\\]|\\.)*"|[^\s{};]+/g) ?? [];
  const fields: ProtoField[] = [];
  /** Each open block: the message name it opened, or null for any other block (enum, oneof, service, option). */
  const stack: { message: string | null; kind: string }[] = [];
  let statement: string[] = [];
  const currentMessage = () => {
    const names = stack.filter((block) => block.message !== null).map((block) => block.message);
    return names.length === 0 ? null : names.join(".");
  };
  for (const token of tokens) {
    if (token === "{") {
      const [keyword, name] = statement;
      stack.push({ message: keyword === "message" && name !== undefined ? name : null, kind: keyword ?? "" });
      statement = [];
    } else if (token === "}") {
      stack.pop();
      statement = [];
    } else if (token === ";") {
      const owner = currentMessage();
      const innermost = stack[stack.length - 1];
      const inFieldScope = innermost !== undefined && (innermost.message !== null || innermost.kind === "oneof");
      const line = statement.join(" ");
      if (owner !== null && inFieldScope && !/^(option|reserved|extensions)\b/.test(line)) {
        const match = /^(?:optional |repeated )?(map\s*<[^>]+>|[\w.]+)\s+(\w+)\s*=\s*\d+/.exec(line);
        if (match !== null) fields.push({ name: `${owner}.${match[2]}`, type: match[1]!.replace(/\s+/g, "") });
      }
      statement = [];
    } else {
      statement.push(token);
    }
  }
  return fields;
}
