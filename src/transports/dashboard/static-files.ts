// Serves the dashboard's static files (web/) from memory: content types, ETag revalidation, strict security headers.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join, relative, sep } from "node:path";
import type { AnyRequest, AnyResponse } from "../../http/index.js";

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".json": "application/json; charset=utf-8",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
};

/** Everything the page may load comes from this origin: no CDN, no inline script. */
const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** One file served from memory. */
export interface StaticFile {
  body: Buffer;
  contentType: string;
  etag: string;
}

/** A file to serve: its bytes, the content type of its extension (`.js`, `.html`, …) and a content-hash ETag. */
export function createStaticFile(body: Buffer, contentType: string): StaticFile {
  return { body, contentType, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"` };
}

/** Content type of a file name's extension; undefined for a type the dashboard does not serve. */
function contentTypeOf(name: string): string | undefined {
  return CONTENT_TYPES[extname(name)];
}

/** The files of `root` keyed by URL path (`/` is `/index.html`); read once, so a request never touches the disk. */
export function loadStaticFiles(root: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  const walk = (directory: string) => {
    for (const entry of readdirSync(directory)) {
      if (entry.startsWith(".")) continue;
      const path = join(directory, entry);
      if (statSync(path).isDirectory()) {
        walk(path);
        continue;
      }
      const contentType = contentTypeOf(entry);
      if (contentType === undefined) continue;
      files.set(`/${relative(root, path).split(sep).join("/")}`, createStaticFile(readFileSync(path), contentType));
    }
  };
  walk(root);
  const index = files.get("/index.html");
  if (index !== undefined) files.set("/", index);
  return files;
}

/** Answers a GET/HEAD with `file` (or 304 when the client's ETag matches), with the dashboard's security headers. */
export function serveFile(file: StaticFile, request: AnyRequest, response: AnyResponse): void {
  const headers = {
    "cache-control": "no-cache",
    etag: file.etag,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "content-security-policy": CONTENT_SECURITY_POLICY,
  };
  if (request.headers["if-none-match"] === file.etag) {
    response.writeHead(304, headers);
    response.end();
    return;
  }
  response.writeHead(200, { ...headers, "content-type": file.contentType, "content-length": file.body.length });
  if (request.method === "HEAD") response.end();
  else response.end(file.body);
}
