// The per-call CPU floor: bare node:http2 answering every stream with one gRPC message and OK trailers (no framework).
import { createServer } from "node:http2";

/** One empty protobuf message, framed: the smallest valid answer. */
const FRAME = Buffer.from([0, 0, 0, 0, 0]);

const server = createServer();
server.on("stream", (stream) => {
  stream.on("data", () => undefined);
  stream.on("end", () => {
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(FRAME);
  });
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(`${typeof address === "object" && address !== null ? address.port : 0}\n`);
});
process.on("SIGTERM", () => process.exit(0));
