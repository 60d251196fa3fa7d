// Reads gRPC length-prefixed messages from a node:http2 request stream: the splitter, and one at a time (streaming).
import type { ServerHttp2Stream } from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";

/** One received message: the flags byte (bit 0 = compressed) and the payload. */
export interface Envelope {
  flags: number;
  data: Uint8Array;
}

/** A message announced larger than `readMaxBytes` (connect's words). */
export function tooLargeError(length: number, readMaxBytes: number): ConnectError {
  return new ConnectError(
    `message size ${length} is larger than configured readMaxBytes ${readMaxBytes}`,
    Code.ResourceExhausted,
  );
}

/**
 * Splits a byte stream into envelopes across chunks of any size. `push()` throws RESOURCE_EXHAUSTED as soon
 * as a prefix announces more than `readMaxBytes`, before the payload is buffered.
 */
export class EnvelopeSplitter {
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;

  constructor(private readonly readMaxBytes: number) {}

  /** Appends `chunk`; returns the envelopes it completed (often none or one). */
  push(chunk: Buffer): Envelope[] {
    if (this.bufferedBytes > 0) {
      this.buffered.push(chunk);
      chunk = Buffer.concat(this.buffered, this.bufferedBytes + chunk.length);
      this.buffered = [];
      this.bufferedBytes = 0;
    }
    const envelopes: Envelope[] = [];
    let offset = 0;
    while (chunk.length - offset >= 5) {
      const length = chunk.readUInt32BE(offset + 1);
      if (length > this.readMaxBytes) throw tooLargeError(length, this.readMaxBytes);
      if (chunk.length - offset - 5 < length) break;
      envelopes.push({ flags: chunk[offset]!, data: chunk.subarray(offset + 5, offset + 5 + length) });
      offset += 5 + length;
    }
    if (offset < chunk.length) {
      const rest = chunk.subarray(offset);
      this.buffered.push(rest);
      this.bufferedBytes = rest.length;
    }
    return envelopes;
  }

  /** True when the bytes so far end inside an envelope. */
  get partial(): boolean {
    return this.bufferedBytes > 0;
  }
}

/** A body that ended inside an envelope. */
export function incompleteEnvelopeError(): ConnectError {
  return new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
}

/**
 * The envelopes of a client- or bidi-streaming request, one at a time as the client sends them
 * (backpressure: the stream is read only as fast as the implementation iterates). Leaving the loop
 * early does not reset the stream: the response may still be written.
 */
export async function* readEnvelopes(stream: ServerHttp2Stream, readMaxBytes: number): AsyncGenerator<Envelope> {
  const splitter = new EnvelopeSplitter(readMaxBytes);
  for await (const chunk of stream.iterator({ destroyOnReturn: false })) {
    yield* splitter.push(chunk as Buffer);
  }
  // The client's half-close, or its RST_STREAM: an implementation must not take a cancel for the end of its input.
  if (await endedByReset(stream)) throw cancelledByClient();
  if (splitter.partial) throw incompleteEnvelopeError();
}

/**
 * Whether the request body ended because the client reset the stream. Node ends the readable side of a reset
 * stream first and reports the reset (`aborted`, `rstCode`) later in the same turn of the event loop, so an
 * ended body is only told from a cancelled one after that turn. Answering in between would close the stream
 * from our side first: the client's cancel would go unseen, also by the listener's stream-reset budget.
 */
export function endedByReset(stream: ServerHttp2Stream): Promise<boolean> {
  return new Promise((resolve) => setImmediate(() => resolve(stream.aborted || stream.rstCode !== 0)));
}

function cancelledByClient(): ConnectError {
  return new ConnectError("the client cancelled the call (RST_STREAM)", Code.Canceled);
}
