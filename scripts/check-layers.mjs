// Fails when an import in src/ crosses a layer the architecture forbids (issue 12), naming the file, its import and the rule.
//
// Layers, by path under src/ (tests and src/gen excluded; `import type` counts, since a type import
// couples the layers as much as a value import does):
//
// | layer       | paths                                  | what it is                                           |
// | ----------- | -------------------------------------- | ---------------------------------------------------- |
// | core        | broker/, engines/, streams/            | topics, subscriptions, storage, the live-stream hub  |
// | transport   | transports/<name>/ (one layer each)    | adapters: decode -> core call -> encode              |
// | edge        | http/, auth/auth-edge.ts               | the listener, TLS, shared HTTP writers, the auth gate |
// | server      | server/                                | the composition root                                 |
// | tunnel      | tunnel/                                | the reverse tunnel (protocol, server, agent, rules)  |
//
// Rules (everything else is allowed; circular imports are check-cycles.mjs's job):
//
// | rule             | from       | must not import                         |
// | ---------------- | ---------- | --------------------------------------- |
// | core-is-neutral  | core       | a transport, the edge or the server     |
// | transports-apart | transport  | another transport                       |
// | tunnel-no-server | tunnel     | the server                              |
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import madge from "madge";

/** The layer of a path relative to src/ (forward slashes), or null when no rule concerns it. */
export function layerOf(file) {
  const parts = file.split("/");
  const top = parts[0];
  if (top === "broker" || top === "engines" || top === "streams") return { kind: "core", name: "core" };
  if (top === "transports" && parts.length > 2) return { kind: "transport", name: `transports/${parts[1]}` };
  if (top === "http" || file === "auth/auth-edge.ts") return { kind: "edge", name: "edge" };
  if (top === "server") return { kind: "server", name: "server" };
  if (top === "tunnel") return { kind: "tunnel", name: "tunnel" };
  return null;
}

/** The rules, each a predicate over the importing and imported layers. */
export const layerRules = [
  {
    name: "core-is-neutral",
    text: "core (broker, engines, streams) never imports a transport, the edge or the server",
    breaks: (from, to) =>
      from.kind === "core" && (to.kind === "transport" || to.kind === "edge" || to.kind === "server"),
  },
  {
    name: "transports-apart",
    text: "a transport never imports another transport (shared helpers live in src/http, src/streams or src/errors)",
    breaks: (from, to) => from.kind === "transport" && to.kind === "transport" && from.name !== to.name,
  },
  {
    name: "tunnel-no-server",
    text: "the tunnel never imports the server (src/server is the composition root; take HTTP pieces from src/http)",
    breaks: (from, to) => from.kind === "tunnel" && to.kind === "server",
  },
];

/** Every forbidden edge of a dependency graph (`{ file: [imported files] }`, paths relative to src/). */
export function findLayerViolations(graph) {
  const violations = [];
  for (const [file, imports] of Object.entries(graph)) {
    const from = layerOf(file);
    if (from === null) continue;
    for (const imported of imports) {
      const to = layerOf(imported);
      if (to === null) continue;
      for (const rule of layerRules) {
        if (rule.breaks(from, to)) violations.push({ file, imported, rule: rule.name, text: rule.text });
      }
    }
  }
  return violations;
}

/** One line per violation: `src/<file> imports src/<imported>: <rule> — <text>`. */
export function formatViolation(violation) {
  return `layering: src/${violation.file} imports src/${violation.imported}: rule ${violation.rule}: ${violation.text}`;
}

/** Builds the import graph of `srcDir` with madge and returns its violations. */
export async function checkLayers(srcDir, tsConfig) {
  const result = await madge(srcDir, {
    fileExtensions: ["ts"],
    excludeRegExp: [/\.test\.ts$/, /[\\/]gen[\\/]/],
    tsConfig,
    detectiveOptions: { ts: { skipTypeImports: false } },
  });
  return findLayerViolations(result.obj());
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const violations = await checkLayers("src", "tsconfig.json");
  for (const violation of violations) console.error(formatViolation(violation));
  if (violations.length > 0) process.exit(1);
}
