// Regenerates TypeScript from .proto sources: ours in proto/, Pub/Sub, health and reflection from dependencies.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const modules = join(root, "node_modules");
const staging = join(root, ".gen", "proto");
const out = join(root, "src", "gen");

/** Import roots searched in order; each maps an import path to a file. */
const roots = [
  join(root, "proto"),
  join(modules, "google-proto-files"),
  join(modules, "grpc-health-check", "proto"),
  join(modules, "@grpc", "reflection", "build", "proto"),
];

/** Entry files (import paths); their imports are followed transitively. */
const entries = [
  "google/pubsub/v1/pubsub.proto",
  "google/iam/v1/iam_policy.proto",
  "health/v1/health.proto",
  "grpc/reflection/v1/reflection.proto",
  "grpc/reflection/v1alpha/reflection.proto",
  ...listOwn(join(root, "proto")),
];

function listOwn(dir, prefix = "") {
  if (!existsSync(dir)) return [];
  const found = [];
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) found.push(...listOwn(full, `${prefix}${name}/`));
    else if (name.endsWith(".proto")) found.push(`${prefix}${name}`);
  }
  return found;
}

function locate(importPath) {
  for (const r of roots) {
    const candidate = join(r, importPath);
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`generate: cannot find ${importPath} in ${roots.map((r) => relative(root, r)).join(", ")}`);
}

const files = new Map();
const queue = [...entries];
while (queue.length > 0) {
  const path = queue.pop();
  // Well-known types come from buf itself and @bufbuild/protobuf/wkt at run time.
  if (files.has(path) || path.startsWith("google/protobuf/")) continue;
  const text = readFileSync(locate(path), "utf8");
  files.set(path, text);
  for (const match of text.matchAll(/^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)";/gm)) queue.push(match[1]);
}

const hash = createHash("sha256");
for (const [path, text] of [...files].sort()) hash.update(path).update("\0").update(text);
hash.update(readFileSync(join(modules, "@bufbuild", "protoc-gen-es", "package.json")));
const digest = hash.digest("hex");
const stamp = join(out, ".stamp");
if (existsSync(stamp) && readFileSync(stamp, "utf8") === digest) process.exit(0);

rmSync(staging, { recursive: true, force: true });
for (const [path, text] of files) {
  mkdirSync(dirname(join(staging, path)), { recursive: true });
  writeFileSync(join(staging, path), text);
}
writeFileSync(join(staging, "buf.yaml"), "version: v2\n");
rmSync(out, { recursive: true, force: true });
const template = JSON.stringify({
  version: "v2",
  plugins: [
    {
      local: join(modules, ".bin", "protoc-gen-es"),
      out,
      opt: ["target=ts", "import_extension=js"],
      include_imports: true,
    },
  ],
});
execFileSync(join(modules, ".bin", "buf"), ["generate", staging, "--template", template], {
  stdio: "inherit",
  cwd: staging,
});
mkdirSync(out, { recursive: true });
writeFileSync(stamp, digest);
console.log(`generate: ${files.size} proto files -> ${relative(root, out)}`);
