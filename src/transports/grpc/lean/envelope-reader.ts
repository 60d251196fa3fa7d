// Reads gRPC length-prefixed messages from a node:http2 request stream: one whole (unary) or one at a time (streaming).
import type { ServerHttp2Stream } from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";

/** One received message: the flags byte (bit 0 = compressed) and the payload. */
export interface Envelope {
  flags: number;
  data: Uint8Array;
}

function tooLarge(length: number, readMaxBytes: number): ConnectError {
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
      if (length > this.readMaxBytes) throw tooLarge(length, this.readMaxBytes);
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

const incomplete = () => new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);

/**
 * Reads the whole request body of a unary or server-streaming call and returns its one envelope.
 * Rejects as connect does: no message or a second one is UNIMPLEMENTED, a truncated one INVALID_ARGUMENT,
 * an oversized one RESOURCE_EXHAUSTED (at once, from its prefix).
 */
export function readSingleEnvelope(stream: ServerHttp2Stream, readMaxBytes: number, kind: string): Promise<Envelope> {
  return new Promise((resolve, reject) => {
    // Made only when the body is not one chunk holding exactly one envelope (the usual unary request).
    let splitter: EnvelopeSplitter | undefined;
    let found: Envelope | undefined;
    // Once settled the listeners stay attached and do nothing: removing them costs more than the stream's end.
    let settled = false;
    const fail = (error: unknown) => {
      if (settled) return;
      settled = true;
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      if (settled) return;
      if (splitter === undefined && found === undefined && chunk.length >= 5) {
        const length = chunk.readUInt32BE(1);
        if (length > readMaxBytes) {
          fail(tooLarge(length, readMaxBytes));
          return;
        }
        if (chunk.length === 5 + length) {
          found = { flags: chunk[0]!, data: chunk.subarray(5) };
          return;
        }
      }
      splitter ??= new EnvelopeSplitter(readMaxBytes);
      let envelopes: Envelope[];
      try {
        envelopes = splitter.push(chunk);
      } catch (error) {
        fail(error);
        return;
      }
      for (const envelope of envelopes) {
        if (found !== undefined) {
          fail(new ConnectError(`protocol error: received extra input message for ${kind} method`, Code.Unimplemented));
          return;
        }
        found = envelope;
      }
    };
    const onEnd = () => {
      if (settled) return;
      settled = true;
      const partial = splitter?.partial ?? false;
      if (found !== undefined && !partial) {
        resolve(found);
        return;
      }
      // A body that ended short may have been cut by the client's RST_STREAM (a cancel): see endedByReset.
      void endedByReset(stream).then((reset) => {
        if (reset) reject(cancelledByClient());
        else if (partial) reject(incomplete());
        else reject(new ConnectError(`protocol error: missing input message for ${kind} method`, Code.Unimplemented));
      });
    };
    stream.on("data", onData);
    stream.on("end", onEnd);
    // A stream reset before its body ended: the call is cancelled elsewhere; this read just stops.
    stream.on("close", onEnd);
  });
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
  if (splitter.partial) throw incomplete();
}

/**
 * Whether the request body ended because the client reset the stream. Node ends the readable side of a reset
 * stream first and reports the reset (`aborted`, `rstCode`) later in the same turn of the event loop, so an
 * ended body is only told from a cancelled one after that turn. Answering in between would close the stream
 * from our side first: the client's cancel would go unseen, also by the listener's stream-reset budget.
 */
function endedByReset(stream: ServerHttp2Stream): Promise<boolean> {
  return new Promise((resolve) => setImmediate(() => resolve(stream.aborted || stream.rstCode !== 0)));
}

function cancelledByClient(): ConnectError {
  return new ConnectError("the client cancelled the call (RST_STREAM)", Code.Canceled);
}
