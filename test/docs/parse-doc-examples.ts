// Finds the examples of a Markdown page: every ```sh / ```bash / ```shell / ```console block, with the
// `<!-- example: … -->` marker on the line before it, and every block tied to a file by `<!-- file: PATH -->`.

/** Languages whose fenced blocks are shell examples: each one is run, or skipped with a reason. */
export const shellLanguages: ReadonlySet<string> = new Set(["sh", "bash", "shell", "console"]);

/** One shell block of a page and how to run it. */
export interface ShellExample {
  kind: "shell";
  /** Page path as given, for messages. */
  page: string;
  /** 1-based line of the opening fence. */
  line: number;
  language: string;
  /** The block's text. For `console` blocks, the commands (`$ ` lines, continuations kept). */
  script: string;
  /** `console` blocks: the lines shown as output, each checked against what the commands printed. */
  expectedLines: string[];
  /** `background`: started, waited for, and stopped when the page ends. */
  background: boolean;
  /** `ready=URL`: an http(s) URL polled until 2xx, or `tcp://host:port` until it accepts. */
  ready?: string;
  /** `ready-output=TEXT`: the background command printed TEXT. */
  readyOutput?: string;
  /** `expect=TEXT`: the output contains TEXT. */
  expect?: string;
  /** `exit=N`: the expected exit status (default 0). */
  exit: number;
  /** `timeout=SECONDS` (default 30; background: the wait for readiness). */
  timeoutMs: number;
  /** `skip reason="…"`: not run here, for the reason given. */
  skip?: string;
  /** `checked-by=PATH`: the test file that checks a skipped example's subject instead; must exist. */
  checkedBy?: string;
}

/** A non-shell block (code, config) that must be a verbatim excerpt of a file in the repository. */
export interface FileExcerpt {
  kind: "file";
  page: string;
  line: number;
  /** Repository-relative path of the file the block is taken from. */
  file: string;
  text: string;
}

export type DocExample = ShellExample | FileExcerpt;

const markerPattern = /^<!--\s*(example|file):(.*?)-->\s*$/;
const attributePattern = /([a-z-]+)(?:=(?:"([^"]*)"|(\S+)))?/g;
const knownAttributes = new Set([
  "background",
  "ready",
  "ready-output",
  "expect",
  "exit",
  "timeout",
  "skip",
  "reason",
  "checked-by",
]);

/** Splits `background ready=http://x expect="a b"` into a map (a bare word maps to ""). */
function parseAttributes(text: string, where: string): Map<string, string> {
  const attributes = new Map<string, string>();
  for (const match of text.matchAll(attributePattern)) {
    const [, name, quoted, bare] = match;
    if (!knownAttributes.has(name!)) throw new Error(`${where}: unknown example attribute "${name}"`);
    attributes.set(name!, quoted ?? bare ?? "");
  }
  return attributes;
}

/** Commands and expected output of a `console` block: `$ ` lines (with `\` continuations) and the rest. */
function splitConsole(body: string[]): { script: string; expectedLines: string[] } {
  const commands: string[] = [];
  const expectedLines: string[] = [];
  let continuing = false;
  for (const line of body) {
    if (continuing) {
      commands.push(line);
      continuing = line.endsWith("\\");
    } else if (line.startsWith("$ ")) {
      commands.push(line.slice(2));
      continuing = line.endsWith("\\");
    } else if (line.trim() !== "") {
      expectedLines.push(line);
    }
  }
  return { script: commands.join("\n"), expectedLines };
}

/**
 * Parses `markdown` (the text of `page`) into its examples, in page order. Throws on a malformed marker, a
 * skip without a reason, or a `file:` marker that does not precede a fenced block.
 */
export function parseDocExamples(page: string, markdown: string): DocExample[] {
  const lines = markdown.split("\n");
  const examples: DocExample[] = [];
  let index = 0;
  while (index < lines.length) {
    const fence = /^(\s{0,3})(`{3,}|~{3,})\s*([\w-]*)/.exec(lines[index]!);
    if (fence === null) {
      index++;
      continue;
    }
    const [, indent, marks, language] = fence;
    const start = index;
    const body: string[] = [];
    index++;
    while (index < lines.length && !lines[index]!.trimStart().startsWith(marks!)) {
      body.push(lines[index]!.startsWith(indent!) ? lines[index]!.slice(indent!.length) : lines[index]!);
      index++;
    }
    index++;
    let previous = start - 1;
    while (previous >= 0 && lines[previous]!.trim() === "") previous--;
    const marker = previous >= 0 ? markerPattern.exec(lines[previous]!.trim()) : null;
    const where = `${page}:${start + 1}`;
    if (marker?.[1] === "file") {
      examples.push({ kind: "file", page, line: start + 1, file: marker[2]!.trim(), text: body.join("\n") });
      continue;
    }
    if (!shellLanguages.has(language!)) {
      if (marker !== null)
        throw new Error(`${where}: an example marker on a \`\`\`${language || "(no language)"} block`);
      continue;
    }
    const attributes = parseAttributes(marker?.[2] ?? "", where);
    const skip = attributes.has("skip") ? (attributes.get("reason") ?? "") : undefined;
    if (skip === "") throw new Error(`${where}: "skip" needs reason="why it cannot run here"`);
    const background = attributes.has("background");
    if (background && !attributes.has("ready") && !attributes.has("ready-output")) {
      throw new Error(`${where}: a background example needs ready=URL or ready-output=TEXT`);
    }
    const { script, expectedLines } =
      language === "console" ? splitConsole(body) : { script: body.join("\n"), expectedLines: [] };
    const example: ShellExample = {
      kind: "shell",
      page,
      line: start + 1,
      language: language!,
      script,
      expectedLines,
      background,
      exit: Number(attributes.get("exit") ?? 0),
      timeoutMs: Number(attributes.get("timeout") ?? 30) * 1000,
    };
    if (attributes.has("ready")) example.ready = attributes.get("ready")!;
    if (attributes.has("ready-output")) example.readyOutput = attributes.get("ready-output")!;
    if (attributes.has("expect")) example.expect = attributes.get("expect")!;
    if (skip !== undefined) example.skip = skip;
    if (attributes.has("checked-by")) example.checkedBy = attributes.get("checked-by")!;
    if (!Number.isInteger(example.exit) || !(example.timeoutMs > 0)) throw new Error(`${where}: bad exit= or timeout=`);
    examples.push(example);
  }
  return examples;
}
