// A private HTTP service for the tunnel example: answers every request with its method, path and the
// X-Forwarded-* headers the tunnel added. Listens on 127.0.0.1:3000.
import { createServer } from "node:http";

createServer((request, response) => {
  response.setHeader("content-type", "text/plain");
  response.end(
    `hello from the backend: ${request.method} ${request.url} (for ${request.headers["x-forwarded-for"]})\n`,
  );
}).listen(3000, "127.0.0.1", () => console.log("http backend on 127.0.0.1:3000"));
