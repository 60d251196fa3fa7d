// The fan-out and connections anchor (child process): a bare `ws` server. Subscribers connect on /sub (WebSocket) or
// GET /sse-sub (node:http SSE); one publisher on /pub sends pre-serialized frames joined by "\n"; each is broadcast as
// is to every WebSocket subscriber (one corked write burst per subscriber per batch) and, as SSE events serialized
// once per batch, to every SSE subscriber (one `response.write` per subscriber per batch); then "ack" goes back.
import { createServer, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { WebSocket, WebSocketServer } from "ws";

const sseSubscribers = new Set<ServerResponse>();
let sseId = 0;

// GET /sse holds an idle event stream open (the connections bench's SSE anchor); GET /sse-sub is a fan-out SSE
// subscriber; anything else is 404.
const server = createServer((request, response) => {
  if (request.url !== "/sse" && request.url !== "/sse-sub") {
    response.writeHead(404).end();
    return;
  }
  response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  response.write("retry: 2000\n\n");
  if (request.url === "/sse-sub") {
    request.socket.setNoDelay(true);
    sseSubscribers.add(response);
    response.on("close", () => sseSubscribers.delete(response));
  }
});
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });
const subscribers = new Set<{ ws: WebSocket; socket: Socket }>();

server.on("upgrade", (request, socket: Socket, head) => {
  socket.setNoDelay(true);
  wss.handleUpgrade(request, socket, head, (ws) => {
    if (request.url === "/pub") {
      ws.on("message", (data: Buffer) => {
        const text = data.toString("utf8");
        const frames: Buffer[] = [];
        let from = 0;
        for (let at = text.indexOf("\n"); at >= 0; at = text.indexOf("\n", from)) {
          frames.push(Buffer.from(text.slice(from, at)));
          from = at + 1;
        }
        frames.push(Buffer.from(text.slice(from)));
        for (const subscriber of subscribers) {
          if (subscriber.ws.readyState !== WebSocket.OPEN) continue;
          subscriber.socket.cork();
          for (const frame of frames) subscriber.ws.send(frame, { binary: false });
          subscriber.socket.uncork();
        }
        if (sseSubscribers.size > 0) {
          let events = "";
          for (const frame of frames) events += `id: ${++sseId}\nevent: message\ndata: ${frame}\n\n`;
          const bytes = Buffer.from(events);
          for (const response of sseSubscribers) response.write(bytes);
        }
        ws.send("ack");
      });
      return;
    }
    const subscriber = { ws, socket };
    subscribers.add(subscriber);
    ws.on("close", () => subscribers.delete(subscriber));
    ws.on("error", () => undefined);
  });
});

server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  process.send?.({ port: typeof address === "object" && address !== null ? address.port : 0 });
});
process.on("disconnect", () => process.exit(0));
