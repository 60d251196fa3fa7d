// The schema compiler: Avro (avsc) and Protocol Buffer (protobufjs) definitions, and messages in JSON and BINARY.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import avro from "avsc";
import protobuf from "protobufjs";
import { SchemaEncoding } from "../broker/types.js";
import { Code, StreamgateError } from "../errors/index.js";
import { compileSchema, MAX_DEFINITION_BYTES } from "./schema-compiler.js";
import { SchemaType } from "./types.js";

const AVRO = JSON.stringify({
  type: "record",
  name: "Reading",
  fields: [
    { name: "celsius", type: "double" },
    { name: "sensor", type: ["null", "string"], default: null },
  ],
});
const PROTO = `syntax = "proto3";
package farm;
message Reading {
  double celsius = 1;
  string sensor = 2;
  enum Kind { AIR = 0; SOIL = 1; }
  Kind kind = 3;
  message Place { string field = 1; }
  Place place = 4;
}
`;
const bytes = (text: string) => Buffer.from(text);
const refuses = (action: () => void, pattern: RegExp) => assert.throws(action, pattern);
const refusedDefinition = (action: () => unknown, pattern: RegExp) =>
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof StreamgateError);
    assert.equal(error.code, Code.INVALID_ARGUMENT);
    assert.match(error.message, pattern);
    return true;
  });

describe("schemas - compiler", () => {
  it("schemas compiler - Avro JSON uses Avro's JSON encoding (unions wrapped); BINARY the datum exactly", () => {
    const compiled = compileSchema({ type: SchemaType.avro, definition: AVRO });
    compiled.validate(bytes('{"celsius": 21.5, "sensor": {"string": "s1"}}'), SchemaEncoding.json);
    compiled.validate(bytes('{"celsius": 21.5, "sensor": null}'), SchemaEncoding.json);
    refuses(() => compiled.validate(bytes('{"celsius": "warm"}'), SchemaEncoding.json), /double/);
    refuses(() => compiled.validate(bytes('{"celsius": 1, "sensor": "s1"}'), SchemaEncoding.json), /invalid/);
    refuses(() => compiled.validate(bytes("{"), SchemaEncoding.json), /JSON/);
    const binary = avro.Type.forSchema(JSON.parse(AVRO)).toBuffer({ celsius: 1.5, sensor: "s1" });
    compiled.validate(binary, SchemaEncoding.binary);
    refuses(() => compiled.validate(Buffer.concat([binary, Buffer.from([0])]), SchemaEncoding.binary), /trailing/);
    refuses(() => compiled.validate(binary.subarray(0, 3), SchemaEncoding.binary), /truncated/);
  });

  it("schemas compiler - Protobuf: the file's one top-level message, strict JSON mapping, wire format for BINARY", () => {
    const compiled = compileSchema({ type: SchemaType.protocolBuffer, definition: PROTO });
    compiled.validate(
      bytes('{"celsius": 2, "sensor": "s1", "kind": "SOIL", "place": {"field": "north"}}'),
      SchemaEncoding.json,
    );
    refuses(() => compiled.validate(bytes('{"unused": "x"}'), SchemaEncoding.json), /unknown field/);
    refuses(() => compiled.validate(bytes('{"kind": "WATER"}'), SchemaEncoding.json), /enum/);
    refuses(() => compiled.validate(bytes('{"sensor": 5}'), SchemaEncoding.json), /string/);
    const type = protobuf.parse(PROTO).root.lookupType("farm.Reading");
    const binary = type.encode(type.fromObject({ celsius: 3, sensor: "s2" })).finish();
    compiled.validate(binary, SchemaEncoding.binary);
    refuses(() => compiled.validate(binary.subarray(0, binary.length - 1), SchemaEncoding.binary), /range/);
  });

  it("schemas compiler - definitions that cannot be used are INVALID_ARGUMENT saying why", () => {
    refusedDefinition(
      () => compileSchema({ type: SchemaType.avro, definition: "{" }),
      /schema\.definition: is not a valid Avro schema/,
    );
    refusedDefinition(
      () => compileSchema({ type: SchemaType.avro, definition: '{"type": "nope"}' }),
      /is not a valid Avro schema: .*nope/,
    );
    refusedDefinition(
      () =>
        compileSchema({
          type: SchemaType.protocolBuffer,
          definition: 'syntax = "proto3";\nimport "other.proto";\nmessage A { int32 x = 1; }',
        }),
      /imports are not supported/,
    );
    refusedDefinition(
      () => compileSchema({ type: SchemaType.protocolBuffer, definition: 'syntax = "proto3";\nenum E { A = 0; }' }),
      /exactly one top-level type, a message; found enum E/,
    );
    refusedDefinition(
      () =>
        compileSchema({
          type: SchemaType.protocolBuffer,
          definition: 'syntax = "proto3";\nmessage A { int32 x = 1; }\nmessage B { int32 y = 1; }',
        }),
      /found message A, message B/,
    );
    refusedDefinition(
      () => compileSchema({ type: SchemaType.protocolBuffer, definition: "message A { Missing m = 1; }" }),
      /Missing/,
    );
    refusedDefinition(
      () => compileSchema({ type: SchemaType.avro, definition: " " }),
      /schema\.definition: is required/,
    );
    refusedDefinition(
      () => compileSchema({ type: SchemaType.avro, definition: `"${"x".repeat(MAX_DEFINITION_BYTES)}"` }),
      /at most 300000/,
    );
    refusedDefinition(() => compileSchema({ type: "XML" as SchemaType, definition: "<a/>" }, "schema"), /schema\.type/);
  });
});
