// A node:http backend for the tunnel's HTTP entry tests: Server-Sent Events released step by step by the
// test (so a buffering hop shows), a `ws` echo WebSocket at /ws, a streaming body echo and a header echo.
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { WebSocketServer } from "ws";

/** One open `GET /events` response: the test decides when each event goes out. */
export interface SseClient {
  /** Request headers as the backend received them. */
  headers: IncomingMessage["headers"];
  /** Writes one event (`id`, `data`); resolves once written. */
  send(id: number, data: string): void;
  /** Ends the response. */
  end(): void;
  /** Resolves when the client (or a hop) closed the connection. */
  closed: Promise<void>;
}

export interface HttpBackend {
  port: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** Resolves with the next `GET /events` request to arrive (within `timeoutMs`). */
  nextSseClient(timeoutMs: number): Promise<SseClient>;
  /** Open WebSocket connections. */
  webSockets(): number;
  close(): Promise<void>;
}

/**
 * Routes: `GET /events` (SSE, driven by {@link HttpBackend.nextSseClient}), `POST /echo` (streams the body
 * back as it arrives, same content type), `GET /headers` (the request headers as JSON), `GET /trailers`
 * (a chunked body, then the trailers `x-checksum: abc123` and `x-rows: 2`), `GET /ws` (WebSocket echo: every
 * message back, same type).
 */
export async function startHttpBackend(): Promise<HttpBackend> {
  const waiting: ((client: SseClient) => void)[] = [];
  const queued: SseClient[] = [];
  const sockets = new Set<Socket>();

  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const path = (request.url ?? "/").split("?")[0];
    if (request.method === "GET" && path === "/events") {
      response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      response.flushHeaders();
      const client: SseClient = {
        headers: request.headers,
        send(id, data) {
          response.write(`id: ${id}\nevent: message\ndata: ${data}\n\n`);
        },
        end() {
          response.end();
        },
        closed: once(response, "close").then(() => undefined),
      };
      const waiter = waiting.shift();
      if (waiter !== undefined) waiter(client);
      else queued.push(client);
      return;
    }
    if (request.method === "POST" && path === "/echo") {
      response.writeHead(200, { "content-type": request.headers["content-type"] ?? "application/octet-stream" });
      request.pipe(response);
      return;
    }
    if (request.method === "GET" && path === "/trailers") {
      response.writeHead(200, { "content-type": "text/plain", trailer: "x-checksum, x-rows" });
      response.write("row 1\n");
      response.write("row 2\n");
      response.addTrailers({ "x-checksum": "abc123", "x-rows": "2" });
      response.end();
      return;
    }
    if (request.method === "GET" && path === "/headers") {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify(request.headers));
      return;
    }
    response.writeHead(404, { "content-type": "text/plain" });
    response.end("not found\n");
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  const wss = new WebSocketServer({ server, path: "/ws" });
  wss.on("connection", (socket) => {
    socket.on("message", (data, isBinary) => socket.send(data, { binary: isBinary }));
  });

  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    nextSseClient(timeoutMs) {
      const ready = queued.shift();
      if (ready !== undefined) return Promise.resolve(ready);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          const index = waiting.indexOf(deliver);
          if (index >= 0) waiting.splice(index, 1);
          reject(new Error(`no GET /events reached the backend within ${timeoutMs} ms`));
        }, timeoutMs);
        const deliver = (client: SseClient) => {
          clearTimeout(timer);
          resolve(client);
        };
        waiting.push(deliver);
      });
    },
    webSockets: () => wss.clients.size,
    async close() {
      for (const client of wss.clients) client.terminate();
      wss.close();
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, "close");
    },
  };
}
