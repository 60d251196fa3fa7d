// The ack records on a real nats-server: sequences written by one connection are read by another, retracted, trimmed below the ack floor and forgotten per generation.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { startNatsPeer, startNatsServer } from "../../../test/harness/nats-server.js";
import { AckRecords, decodeSequences, encodeByRange, SEQUENCES_PER_SUBJECT } from "./ack-records.js";

const { peer: server, missing } = await startNatsPeer(() => startNatsServer());

const sorted = (values: number[]) => [...values].sort((a, b) => a - b);

describe("ack records - encoding", () => {
  it("ack records - sequences are written as runs per subject range, in the order given, and read back exactly", () => {
    const R = SEQUENCES_PER_SUBJECT;
    assert.deepEqual([...encodeByRange([5, 6, 7, 8, 9, 12, 20, 21])], [[0, "5-9,12,20-21"]]);
    assert.deepEqual([...encodeByRange([9, 3, 4, 4])], [[0, "9,3-4,4"]], "unsorted, with a repeat");
    assert.deepEqual(
      [...encodeByRange([R - 2, R - 1, R, R + 1, 2 * R + 7])],
      [
        [0, `${R - 2}-${R - 1}`],
        [1, `${R}-${R + 1}`],
        [2, `${2 * R + 7}`],
      ],
      "a run crossing a range boundary is split",
    );
    assert.deepEqual([...encodeByRange([])], []);
    for (let round = 0; round < 50; round++) {
      const input: number[] = [];
      for (let index = 0; index < 200; index++) input.push(1 + Math.floor(Math.random() * 3 * R));
      if (round % 2 === 0) input.sort((a, b) => a - b);
      const decoded = [...encodeByRange(input).values()].flatMap((text) => decodeSequences(text));
      assert.deepEqual(sorted([...new Set(decoded)]), sorted([...new Set(input)]));
    }
  });

  it("ack records - a malformed part is skipped, not read as sequence 0 or a reversed range", () => {
    assert.deepEqual(decodeSequences("x,0,9-7,4,5-6"), [4, 5, 6]);
  });
});

describe("ack records", { skip: missing }, () => {
  let writer: NatsConnection;
  let reader: NatsConnection;
  let written: AckRecords;
  let read: AckRecords;
  const namespace = `r${randomBytes(3).toString("hex")}`;

  before(async () => {
    writer = await connect({ servers: server!.url });
    reader = await connect({ servers: server!.url });
    written = await AckRecords.open(writer, await jetstreamManager(writer), namespace, 1);
    read = await AckRecords.open(reader, await jetstreamManager(reader), namespace, 1);
  });

  after(async () => {
    written?.close();
    read?.close();
    await writer?.close();
    await reader?.close();
    await server?.stop();
  });

  it("ack records - what one connection wrote, another reads, per generation; a retraction takes sequences back", async () => {
    assert.equal(await written.write("s1", 1, [7, 3, 4, 5]), true);
    assert.equal(await written.write("s1", 1, [SEQUENCES_PER_SUBJECT + 2, 9]), true, "a record over two ranges");
    assert.equal(await written.write("s1", 2, [100]), true);
    assert.equal(await written.write("s1", 1, [4, 9], true), true);
    assert.deepEqual(sorted(await read.read("s1", 1)), [3, 5, 7, SEQUENCES_PER_SUBJECT + 2]);
    assert.deepEqual(await read.read("s1", 2), [100]);
    assert.deepEqual(await read.read("s9", 1), [], "a subscription without records");
  });

  it("ack records - a trim drops only the ranges the ack floor passed; forgetting a generation drops its records", async () => {
    const top = 2 * SEQUENCES_PER_SUBJECT + 5;
    await written.write("s2", 1, [1, SEQUENCES_PER_SUBJECT - 1, SEQUENCES_PER_SUBJECT + 1, top]);
    await read.trim("s2", 1, SEQUENCES_PER_SUBJECT + 3);
    assert.deepEqual(sorted(await read.read("s2", 1)), [SEQUENCES_PER_SUBJECT + 1, top], "the first range is gone");
    await written.write("s2", 2, [top + 1]);
    await read.forget("s2", 1);
    assert.deepEqual(await read.read("s2", 1), []);
    assert.deepEqual(await read.read("s2", 2), [top + 1]);
    await read.forget("s2");
    assert.deepEqual(await read.read("s2", 2), [], "a deleted subscription's records are gone");
  });
});
