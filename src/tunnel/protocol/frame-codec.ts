// gRPC length-prefixed framing of tunnel protocol messages: pure encode/decode, no sockets.
import { type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { Code, StreamgateError } from "../../errors/index.js";

/** Bytes of the gRPC message prefix: 1 flag byte + 4 length bytes (big endian). */
export const PREFIX_BYTES = 5;

/** Default largest tunnel frame, in bytes: one 4 MiB gRPC message plus headroom for the frame's fields. */
export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024 + 64 * 1024;

/** Encodes one message as a gRPC length-prefixed frame (uncompressed). */
export function encodeFrame<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): Uint8Array {
  const body = toBinary(schema, message);
  const frame = new Uint8Array(PREFIX_BYTES + body.length);
  new DataView(frame.buffer).setUint32(1, body.length);
  frame.set(body, PREFIX_BYTES);
  return frame;
}

/**
 * Splits a byte stream into messages of `schema`. Push chunks as they arrive; each call returns the
 * messages completed so far. Throws a StreamgateError (and stays failed) on a compressed flag, a
 * frame above `maxFrameBytes` (checked from the prefix, before buffering the body) or bytes that do
 * not decode; the caller ends the stream with that error.
 */
export class FrameDecoder<Desc extends DescMessage> {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private failure: StreamgateError | null = null;

  /**
   * @param fastDecode decodes the frames it recognizes without the schema (see data-frame.ts); null
   *   hands the frame to the schema decoder.
   */
  constructor(
    private readonly schema: Desc,
    private readonly maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES,
    private readonly fastDecode: ((body: Uint8Array) => MessageShape<Desc> | null) | null = null,
  ) {}

  /** Bytes received and not yet part of a whole frame. */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  push(chunk: Uint8Array): MessageShape<Desc>[] {
    if (this.failure !== null) throw this.failure;
    if (chunk.length > 0) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
    }
    const messages: MessageShape<Desc>[] = [];
    while (this.pendingBytes >= PREFIX_BYTES) {
      const prefix = this.peek(PREFIX_BYTES);
      const flags = prefix[0]!;
      // Big-endian uint32 read by hand (no DataView per frame).
      const length = prefix[1]! * 0x1000000 + ((prefix[2]! << 16) | (prefix[3]! << 8) | prefix[4]!);
      if (flags !== 0) return this.fail("compressed or unknown frame flags are not supported", "TUNNEL_FRAME_FLAGS");
      if (length > this.maxFrameBytes) {
        return this.fail(
          `tunnel frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes}`,
          "TUNNEL_FRAME_TOO_LARGE",
          Code.RESOURCE_EXHAUSTED,
        );
      }
      if (this.pendingBytes < PREFIX_BYTES + length) break;
      const frame = this.take(PREFIX_BYTES + length).subarray(PREFIX_BYTES);
      const fast = this.fastDecode?.(frame) ?? null;
      if (fast !== null) {
        messages.push(fast);
        continue;
      }
      try {
        messages.push(fromBinary(this.schema, frame));
      } catch (error) {
        return this.fail(
          `malformed tunnel frame: ${(error as Error).message}`,
          "TUNNEL_FRAME_MALFORMED",
          undefined,
          error,
        );
      }
    }
    return messages;
  }

  /** Throws when the stream ended inside a frame. */
  end(): void {
    if (this.failure !== null) throw this.failure;
    if (this.pendingBytes > 0)
      this.fail(`stream ended inside a tunnel frame (${this.pendingBytes} bytes left)`, "TUNNEL_FRAME_TRUNCATED");
  }

  private fail(message: string, reason: string, code: Code = Code.INVALID_ARGUMENT, cause?: unknown): never {
    this.failure = new StreamgateError(code, message, { reason, cause });
    this.pending = [];
    this.pendingBytes = 0;
    throw this.failure;
  }

  private peek(bytes: number): Uint8Array {
    const first = this.pending[0]!;
    if (first.length >= bytes) return first.subarray(0, bytes);
    return this.concat().subarray(0, bytes);
  }

  private take(bytes: number): Uint8Array {
    const first = this.concat(bytes);
    const taken = first.subarray(0, bytes);
    const rest = first.subarray(bytes);
    this.pending = rest.length > 0 ? [rest] : [];
    this.pendingBytes -= bytes;
    return taken;
  }

  /** Joins buffered chunks until the first one holds at least `atLeast` bytes (all when omitted). */
  private concat(atLeast = this.pendingBytes): Uint8Array {
    if (this.pending[0]!.length >= atLeast) return this.pending[0]!;
    const joined = new Uint8Array(this.pendingBytes);
    let offset = 0;
    for (const chunk of this.pending) {
      joined.set(chunk, offset);
      offset += chunk.length;
    }
    this.pending = [joined];
    return joined;
  }
}
