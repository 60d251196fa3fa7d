// Fails when the source tree has circular imports.
import madge from "madge";

const result = await madge("src", {
  fileExtensions: ["ts"],
  excludeRegExp: [/\.test\.ts$/, /[\\/]gen[\\/]/],
  tsConfig: "tsconfig.json",
  detectiveOptions: { ts: { skipTypeImports: true } },
});
const cycles = result.circular();
if (cycles.length > 0) {
  for (const cycle of cycles) console.error(`circular import: ${cycle.join(" -> ")}`);
  process.exit(1);
}
