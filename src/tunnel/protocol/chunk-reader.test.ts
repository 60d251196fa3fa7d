// readChunks - ends, errors, premature close, early return, and reads buffered chunks together.
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";
import { readChunks } from "./chunk-reader.js";

async function collect(iterable: AsyncIterable<Uint8Array>): Promise<string> {
  let text = "";
  for await (const chunk of iterable) text += Buffer.from(chunk).toString();
  return text;
}

describe("tunnel chunk reader", () => {
  it("chunk reader - yields everything written, in order, then ends; later calls stay done", async () => {
    const stream = new PassThrough();
    const reader = readChunks(stream);
    const result = collect(reader);
    for (const part of ["a", "bc", "def"]) {
      stream.write(part);
      await new Promise((resolve) => setImmediate(resolve));
    }
    stream.end("g");
    assert.equal(await result, "abcdefg");
    assert.deepEqual(await reader.next(), { value: undefined, done: true });
  });

  it("chunk reader - chunks buffered before a read come as one", async () => {
    const stream = new PassThrough();
    stream.write("one");
    stream.write("two");
    stream.write("three");
    const reader = readChunks(stream);
    const first = await reader.next();
    assert.equal(Buffer.from(first.value as Uint8Array).toString(), "onetwothree");
  });

  it("chunk reader - a stream error rejects the waiting read", async () => {
    const stream = new PassThrough();
    const reader = readChunks(stream);
    const pending = reader.next();
    stream.destroy(new Error("boom"));
    await assert.rejects(pending, /boom/);
  });

  it("chunk reader - a close without end is a premature close", async () => {
    const stream = new PassThrough();
    const reader = readChunks(stream);
    stream.write("x");
    assert.equal(Buffer.from((await reader.next()).value as Uint8Array).toString(), "x");
    const pending = reader.next();
    stream.destroy();
    await assert.rejects(pending, (error: NodeJS.ErrnoException) => error.code === "ERR_STREAM_PREMATURE_CLOSE");
  });

  it("chunk reader - return() ends a waiting read and leaves the stream open", async () => {
    const stream = new PassThrough();
    const reader = readChunks(stream);
    const pending = reader.next();
    await reader.return!();
    assert.deepEqual(await pending, { value: undefined, done: true });
    assert.equal(stream.destroyed, false);
    assert.equal(stream.listenerCount("readable"), 0);
    stream.end("still writable");
  });
});
