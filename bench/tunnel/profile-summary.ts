// Reads what bench/tunnel/profile.ts wrote: a V8 .cpuprofile as its top functions by self time (and by file), or two
// .heapsnapshot files (before, after) as the objects added between them, grouped by constructor, per `--per` items.
//
//   node --import tsx bench/tunnel/profile-summary.ts server-CPU.….cpuprofile [--top 30]
//   node --import tsx bench/tunnel/profile-summary.ts before.heapsnapshot after.heapsnapshot --per 2000
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: "string", default: "30" }, per: { type: "string", default: "1" } },
});
const top = Number(values.top);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
}

function summariseCpu(file: string): void {
  const profile = JSON.parse(readFileSync(file, "utf8")) as { nodes: ProfileNode[]; samples: number[] };
  const total = profile.samples.length;
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  let idle = 0;
  for (const node of profile.nodes) {
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === "(idle)") idle += node.hitCount;
    const where = url === "" ? "" : url.replace(/^.*\/(node_modules|dist|src)\//, "$1/");
    const key = `${functionName || "(anonymous)"} ${where}${where === "" ? "" : `:${lineNumber + 1}`}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + node.hitCount);
    const group = url === "" ? `(${functionName})` : url.startsWith("node:") ? url : where.replace(/:\d+$/, "");
    byFile.set(group, (byFile.get(group) ?? 0) + node.hitCount);
  }
  const busy = total - idle;
  const show = (title: string, map: Map<string, number>) => {
    console.log(`  ${title}`);
    for (const [key, hits] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      if (key.startsWith("(idle)")) continue;
      console.log(`    ${((100 * hits) / busy).toFixed(1).padStart(5)}%  ${key}`);
    }
  };
  console.log(`${basename(file)}: ${total} samples, ${((100 * idle) / total).toFixed(0)}% idle; shares of busy time`);
  show("by function (self)", byFunction);
  show("by file", new Map([...byFile].slice(0)));
}

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

function heapGroups(file: string): Map<string, { count: number; bytes: number }> {
  const data = JSON.parse(readFileSync(file, "utf8")) as Snapshot;
  const fields = data.snapshot.meta.node_fields;
  const width = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const types = data.snapshot.meta.node_types[0];
  const groups = new Map<string, { count: number; bytes: number }>();
  for (let index = 0; index < data.nodes.length; index += width) {
    const type = types[data.nodes[index + typeAt]!]!;
    const label = data.strings[data.nodes[index + nameAt]!]!;
    const name =
      type === "object" || type === "native"
        ? label
        : type === "closure"
          ? `(closure) ${label || "(anonymous)"}`
          : `(${type})`;
    const key = name.length > 60 ? `${name.slice(0, 57)}...` : name;
    const group = groups.get(key) ?? { count: 0, bytes: 0 };
    group.count++;
    group.bytes += data.nodes[index + sizeAt]!;
    groups.set(key, group);
  }
  return groups;
}

function diffHeaps(beforeFile: string, afterFile: string, per: number): void {
  const before = heapGroups(beforeFile);
  const after = heapGroups(afterFile);
  const rows: { key: string; count: number; bytes: number }[] = [];
  let totalBytes = 0;
  for (const [key, group] of after) {
    const old = before.get(key) ?? { count: 0, bytes: 0 };
    rows.push({ key, count: group.count - old.count, bytes: group.bytes - old.bytes });
    totalBytes += group.bytes - old.bytes;
  }
  console.log(
    `${basename(afterFile)} − ${basename(beforeFile)}: ${(totalBytes / per / 1024).toFixed(2)} KiB of JS heap per item (${per} items)`,
  );
  for (const row of rows.sort((a, b) => b.bytes - a.bytes).slice(0, top)) {
    console.log(
      `  ${(row.bytes / per).toFixed(0).padStart(6)} B  ${(row.count / per).toFixed(2).padStart(6)} objects  ${row.key}`,
    );
  }
}

if (positionals.length === 2 && positionals.every((file) => file.endsWith(".heapsnapshot"))) {
  diffHeaps(positionals[0]!, positionals[1]!, Number(values.per));
} else {
  for (const file of positionals) summariseCpu(file);
}
