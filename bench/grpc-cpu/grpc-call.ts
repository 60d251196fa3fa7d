// One gRPC call over node:http2 (h2c), for the bench's setup and its check that each measured call answers OK.
import { connect } from "node:http2";

/** The status and first response message of one unary call. */
export interface CallResult {
  status: string;
  message: string;
  body: Buffer;
}

/** Frames a serialized protobuf message (flag 0, 4-byte length). */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/** Makes one unary call with an already framed request; resolves to grpc-status, grpc-message and the response body. */
export function unaryCall(port: number, path: string, frame: Buffer): Promise<CallResult> {
  return new Promise((resolve, reject) => {
    const session = connect(`http://127.0.0.1:${port}`);
    session.on("error", reject);
    const stream = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
    });
    const chunks: Buffer[] = [];
    let status = "";
    let message = "";
    const read = (headers: Record<string, unknown>) => {
      if (headers["grpc-status"] !== undefined) status = String(headers["grpc-status"]);
      if (headers["grpc-message"] !== undefined) message = String(headers["grpc-message"]);
    };
    stream.on("response", read);
    stream.on("trailers", read);
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", reject);
    stream.on("close", () => {
      session.close();
      resolve({ status, message, body: Buffer.concat(chunks) });
    });
    stream.end(frame);
  });
}
