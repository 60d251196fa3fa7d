// One grpc.health.v1.Health/Check call over a raw HTTP/2 stream, bounded by a timeout.
import { type ClientHttp2Stream, constants } from "node:http2";
import { create } from "@bufbuild/protobuf";
import {
  HealthCheckRequestSchema,
  HealthCheckResponse_ServingStatus,
  HealthCheckResponseSchema,
} from "../../gen/health/v1/health_pb.js";
import { encodeFrame, FrameDecoder } from "../protocol/frame-codec.js";
import { type Http2SessionPool, http2Origin } from "./http2-sessions.js";
import { failureDetail } from "./upstream-errors.js";

/** What a probe found: serving or not, and why not. */
export interface ProbeResult {
  serving: boolean;
  /** Empty when serving; otherwise e.g. "NOT_SERVING", "grpc-status 12: unknown service", "connect ECONNREFUSED …". */
  detail: string;
}

const MAX_HEALTH_RESPONSE_BYTES = 64 * 1024;

/** Calls `grpc.health.v1.Health/Check` for `service` on the backend at `address`. */
export function probeHealth(
  pool: Http2SessionPool,
  address: string,
  service: string,
  timeoutMs: number,
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let settled = false;
    let stream: ClientHttp2Stream | undefined;
    const finish = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (stream !== undefined && !stream.destroyed) stream.close(constants.NGHTTP2_CANCEL);
      resolve(result);
    };
    const timer = setTimeout(() => finish({ serving: false, detail: `no answer within ${timeoutMs} ms` }), timeoutMs);
    try {
      ({ stream } = pool.request(http2Origin(address), {
        ":method": "POST",
        ":path": "/grpc.health.v1.Health/Check",
        "content-type": "application/grpc",
        te: "trailers",
        "grpc-timeout": `${timeoutMs}m`,
      }));
    } catch (error) {
      finish({ serving: false, detail: failureDetail(error) });
      return;
    }
    const decoder = new FrameDecoder(HealthCheckResponseSchema, MAX_HEALTH_RESPONSE_BYTES);
    let status: HealthCheckResponse_ServingStatus | undefined;
    let grpcStatus: string | undefined;
    let grpcMessage = "";
    stream.on("response", (headers) => {
      if (headers["grpc-status"] !== undefined) {
        grpcStatus = String(headers["grpc-status"]);
        grpcMessage = decodeURIComponent(String(headers["grpc-message"] ?? ""));
      }
    });
    stream.on("data", (chunk: Buffer) => {
      try {
        for (const message of decoder.push(chunk)) status = message.status;
      } catch (error) {
        finish({ serving: false, detail: `bad health response: ${(error as Error).message}` });
      }
    });
    stream.on("trailers", (trailers) => {
      grpcStatus = String(trailers["grpc-status"] ?? "");
      grpcMessage = decodeURIComponent(String(trailers["grpc-message"] ?? ""));
    });
    stream.on("error", (error) => finish({ serving: false, detail: failureDetail(error) }));
    stream.on("close", () => {
      if (grpcStatus !== undefined && grpcStatus !== "0") {
        finish({ serving: false, detail: `grpc-status ${grpcStatus}${grpcMessage ? `: ${grpcMessage}` : ""}` });
      } else if (status === HealthCheckResponse_ServingStatus.SERVING) {
        finish({ serving: true, detail: "" });
      } else {
        finish({ serving: false, detail: HealthCheckResponse_ServingStatus[status ?? 0] ?? "UNKNOWN" });
      }
    });
    stream.end(encodeFrame(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service })));
  });
}
