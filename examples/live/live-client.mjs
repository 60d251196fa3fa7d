// The streamgate client library (Node and browsers): follow a topic live from the start, resuming after any
// disconnect, and publish to it. Run: node examples/live/live-client.mjs
import { createStreamClient } from "streamgate/client";

const client = createStreamClient({
  baseUrl: process.env.STREAMGATE_URL ?? "http://localhost:8080",
  token: process.env.STREAMGATE_TOKEN, // sent as Authorization: Bearer … (browsers: ?access_token=)
  transport: "sse", // or "websocket" | "longpoll"
});

await client.publish("orders", { data: '{"id":2}', attributes: { kind: "created" } });

const stop = new AbortController();
for await (const message of client.subscribe("orders", {
  from: "earliest", // "latest" (default) | an offset to resume after | a Date
  filter: 'attributes.kind = "created"',
  signal: stop.signal,
})) {
  console.log(`offset ${message.offset}: ${new TextDecoder().decode(message.data)}`);
  if (message.offset >= 2) stop.abort(); // a real client keeps going
}
await client.close();
