// TEMPORARY stand-in for test/harness/packed-install.ts (being written on another branch): same signature, but
// instead of `npm pack` + `npm install <tarball>` it links this checkout into a fresh folder, so `npx streamgate`
// there runs bin/streamgate.mjs of this repository. When the real harness lands, docs-examples.test.ts switches
// with one import line and this file is deleted.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

/** What an installed package looks like to a user: a folder, its tarball, its version and the env to run it in. */
export interface PackedInstall {
  /** Folder with `node_modules/streamgate` and `node_modules/.bin/streamgate`. */
  dir: string;
  /** The tarball that was installed (the stand-in packs nothing: the repository root). */
  tarball: string;
  version: string;
  /** `process.env` with `PATH` starting at `<dir>/node_modules/.bin`. */
  env: NodeJS.ProcessEnv;
}

/**
 * Links this checkout as `node_modules/streamgate` of a temporary folder, with the runtime dependencies a real
 * install would hoist beside it (each `dependencies` entry of package.json, and theirs, already resolved in
 * the repository's node_modules: the whole top level is linked, which is a superset).
 */
export async function installPackedPackage(): Promise<PackedInstall> {
  const manifest = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string };
  const dir = mkdtempSync(join(tmpdir(), "streamgate-installed-"));
  const modules = join(dir, "node_modules");
  mkdirSync(join(modules, ".bin"), { recursive: true });
  symlinkSync(repoRoot, join(modules, "streamgate"), "dir");
  symlinkSync(join(repoRoot, "bin", "streamgate.mjs"), join(modules, ".bin", "streamgate"));
  const devOnly = new Set(
    Object.keys(
      (JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { devDependencies: object }).devDependencies,
    ),
  );
  for (const entry of readdirSync(join(repoRoot, "node_modules"))) {
    if (entry.startsWith(".") || devOnly.has(entry)) continue;
    if (entry.startsWith("@")) {
      mkdirSync(join(modules, entry), { recursive: true });
      for (const scoped of readdirSync(join(repoRoot, "node_modules", entry))) {
        if (devOnly.has(`${entry}/${scoped}`)) continue;
        symlinkSync(join(repoRoot, "node_modules", entry, scoped), join(modules, entry, scoped), "dir");
      }
    } else {
      symlinkSync(join(repoRoot, "node_modules", entry), join(modules, entry), "dir");
    }
  }
  writeFileSync(join(dir, "package.json"), `${JSON.stringify({ private: true, type: "module" }, null, 2)}\n`);
  const env = { ...process.env, PATH: `${join(modules, ".bin")}${delimiter}${process.env.PATH ?? ""}` };
  return { dir, tarball: repoRoot, version: manifest.version, env };
}
