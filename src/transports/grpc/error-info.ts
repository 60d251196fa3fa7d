// google.rpc.ErrorInfo as a gRPC status detail: the reason and per-key metadata clients read from `grpc-status-details-bin`.
import { BinaryWriter } from "@bufbuild/protobuf/wire";

/** The detail type name connect puts in `type.googleapis.com/<name>`. */
export const ERROR_INFO_TYPE = "google.rpc.ErrorInfo";

/** Domain of the errors streamgate itself raises (REST bodies name the same one). */
export const ERROR_INFO_DOMAIN = "streamgate";

/**
 * Encodes `ErrorInfo { reason = 1; domain = 2; map<string, string> metadata = 3; }`. Client
 * libraries read the metadata per key: Pub/Sub's exactly-once acks name each failed ack id there.
 */
export function encodeErrorInfo(reason: string, domain: string, metadata: Record<string, string>): Uint8Array {
  const writer = new BinaryWriter();
  writer.tag(1, 2).string(reason);
  writer.tag(2, 2).string(domain);
  for (const [key, value] of Object.entries(metadata)) {
    writer.tag(3, 2).fork().tag(1, 2).string(key).tag(2, 2).string(value).join();
  }
  return writer.finish();
}
