// Bundles the client library (src/client/index.ts) into one browser ES module with esbuild; a Node built-in fails it.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join } from "node:path";
import { build } from "esbuild";

/** Where the bundle goes, relative to the package root (`exports["./client"].browser`; the dashboard serves it). */
export const BROWSER_CLIENT_FILE = "dist/client/streamgate-client.browser.js";

const builtinNames = builtinModules.filter((name) => !name.startsWith("_")).map((name) => name.replace(/^node:/, ""));
const BUILTIN = new RegExp(
  `^(node:.*|(${builtinNames.map((name) => name.replace(/[/]/g, "\\/")).join("|")})(\\/.*)?)$`,
);

/**
 * Fails the bundle on any import of a Node built-in (`node:fs`, `stream`, …). esbuild's browser platform refuses
 * them too, but only as "could not resolve"; this names the rule and the importer. (A variable specifier, like
 * the WebSocket source's `import(specifier)` of `ws`, is not resolved at build time and stays out.)
 */
const noNodeBuiltins = {
  name: "no-node-builtins",
  setup(builder) {
    builder.onResolve({ filter: BUILTIN }, (args) => ({
      errors: [
        {
          text: `"${args.path}" is a Node built-in (imported by ${args.importer}): the browser client may use web APIs only`,
        },
      ],
    }));
  },
};

/**
 * Bundles `<root>/src/client/index.ts` for browsers: ESM, ES2022, every dependency inlined, nothing external.
 * Writes it to `outFile` when given (the build passes `<root>/BROWSER_CLIENT_FILE`); resolves its text either way.
 */
export async function bundleBrowserClient(root, { outFile } = {}) {
  const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const result = await build({
    absWorkingDir: root,
    entryPoints: [join(root, "src", "client", "index.ts")],
    outfile: join(root, BROWSER_CLIENT_FILE),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
    metafile: true,
    logLevel: "silent",
    legalComments: "eof",
    banner: { js: `// streamgate/client ${version} for browsers (one ES module, bundled from src/client by esbuild).` },
    plugins: [noNodeBuiltins],
  });
  const external = Object.values(result.metafile.inputs).flatMap((input) =>
    input.imports.filter((imported) => imported.external).map((imported) => imported.path),
  );
  if (external.length > 0) throw new Error(`browser client: imports left unbundled: ${external.join(", ")}`);
  const [output] = result.outputFiles;
  if (outFile !== undefined) {
    mkdirSync(dirname(outFile), { recursive: true });
    writeFileSync(outFile, output.contents);
  }
  return output.text;
}
