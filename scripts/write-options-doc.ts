// Rewrites the generated options table of docs/options.md from src/config/option-table.ts.
// Run: node --import tsx scripts/write-options-doc.ts   (src/config/options-doc.test.ts fails while they differ)
import { readFileSync, writeFileSync } from "node:fs";
import { replaceOptionsMarkdown } from "../src/config/index.js";

const path = new URL("../docs/options.md", import.meta.url);
writeFileSync(path, replaceOptionsMarkdown(readFileSync(path, "utf8")));
console.log("docs/options.md: options table rewritten");
