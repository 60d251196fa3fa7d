// Watches a raw gRPC byte stream's 5-byte length prefixes to enforce a maximum message size without buffering.
import { Code, StreamgateError } from "../../errors/index.js";

/** Default largest gRPC message carried, in bytes (gRPC's own default receive limit). */
export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/**
 * Follows message boundaries across chunks of any size; `push()` throws RESOURCE_EXHAUSTED
 * (reason TUNNEL_MESSAGE_TOO_LARGE) when a prefix announces more than `maxMessageBytes`.
 * Keeps no payload: only the bytes left in the current message and a partial prefix.
 */
export class GrpcMessageScanner {
  /** Payload bytes still to skip in the current message. */
  private remaining = 0;
  /** A prefix split across chunks (rare): allocated the first time one is (not per request). */
  private prefix: Uint8Array | undefined;
  private prefixBytes = 0;

  constructor(
    private readonly maxMessageBytes: number,
    private readonly direction: "request" | "response",
  ) {}

  push(chunk: Uint8Array): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.remaining > 0) {
        const skip = Math.min(this.remaining, chunk.length - offset);
        this.remaining -= skip;
        offset += skip;
        continue;
      }
      let length: number;
      if (this.prefixBytes === 0 && chunk.length - offset >= 5) {
        // The whole prefix in this chunk (nearly always): read it in place, no copy.
        length =
          chunk[offset + 1]! * 0x1000000 +
          ((chunk[offset + 2]! << 16) | (chunk[offset + 3]! << 8) | chunk[offset + 4]!);
        offset += 5;
      } else {
        const take = Math.min(5 - this.prefixBytes, chunk.length - offset);
        this.prefix ??= new Uint8Array(5);
        const prefix = this.prefix;
        for (let index = 0; index < take; index++) prefix[this.prefixBytes + index] = chunk[offset + index]!;
        this.prefixBytes += take;
        offset += take;
        if (this.prefixBytes < 5) return;
        this.prefixBytes = 0;
        length = prefix[1]! * 0x1000000 + ((prefix[2]! << 16) | (prefix[3]! << 8) | prefix[4]!);
      }
      if (length > this.maxMessageBytes) {
        throw new StreamgateError(
          Code.RESOURCE_EXHAUSTED,
          `gRPC ${this.direction} message of ${length} bytes exceeds the tunnel limit of ${this.maxMessageBytes} bytes`,
          { reason: "TUNNEL_MESSAGE_TOO_LARGE" },
        );
      }
      this.remaining = length;
    }
  }
}
