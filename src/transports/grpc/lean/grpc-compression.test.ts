// Compression negotiation of the lean gRPC path: connect's choices, and the same answer for a repeated grpc-accept-encoding.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Code } from "@connectrpc/connect";
import { negotiateCompression } from "./grpc-compression.js";

test("grpc compression - the response takes the first accepted encoding served; identity when none is", () => {
  const grpcJs = negotiateCompression(undefined, "identity,deflate,gzip");
  assert.equal(grpcJs.request, null);
  assert.equal(grpcJs.response?.name, "gzip");
  assert.equal(grpcJs.error, undefined);
  assert.equal(negotiateCompression(undefined, " br , gzip").response?.name, "br");
  assert.equal(negotiateCompression(undefined, "identity").response, null);
  assert.equal(negotiateCompression(undefined, undefined).response, null);
});

test("grpc compression - a repeated grpc-accept-encoding gets the same answer, which cannot be changed", () => {
  const first = negotiateCompression(undefined, "identity,deflate,gzip");
  const again = negotiateCompression(undefined, "identity,deflate,gzip");
  assert.equal(again, first);
  assert.ok(Object.isFrozen(first));
});

test("grpc compression - the request's encoding is used both ways unless the client accepts others; an unknown one is UNIMPLEMENTED", () => {
  const gzip = negotiateCompression("gzip", undefined);
  assert.equal(gzip.request?.name, "gzip");
  assert.equal(gzip.response?.name, "gzip");
  const mixed = negotiateCompression("gzip", "br");
  assert.equal(mixed.request?.name, "gzip");
  assert.equal(mixed.response?.name, "br");
  const unknown = negotiateCompression("snappy", "identity,deflate,gzip");
  assert.equal(unknown.error?.code, Code.Unimplemented);
  assert.match(unknown.error?.message ?? "", /unknown compression "snappy"/);
});
