// The engine chain's authorization link over a real embedded engine: grants decide, lists are filtered, and a call without a principal fails closed.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Engine } from "../engines/engine.js";
import { chainEngine } from "../engines/engine-chain.js";
import { createEngine } from "../engines/index.js";
import { authorizationInterceptor } from "./authorization.js";
import { grantsFromClaim } from "./permissions.js";
import { principalContext, runAsPrincipal } from "./principal-context.js";
import { AuthTransport, type TokenPrincipal } from "./token-principal.js";

describe("auth - authorization", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "streamgate-authz-"));
  let engine: Engine;
  let guarded: Engine;
  const denials: string[] = [];
  const principal: TokenPrincipal = {
    id: "alice",
    authenticated: true,
    remoteAddress: "127.0.0.1",
    grants: grantsFromClaim({ publish: ["orders"], subscribe: ["subscriptions/orders-*"] }),
    transport: AuthTransport.grpc,
    expiresAtMs: Date.now() + 60_000,
  };
  const message = { data: Buffer.from("x"), attributes: {}, orderingKey: "" };

  before(async () => {
    engine = await createEngine({ engine: "embedded", dataDir, syncEveryCommit: false });
    const authorization = authorizationInterceptor((transport) => denials.push(transport));
    guarded = chainEngine(engine, principalContext, [authorization]).engine;
    for (const name of ["orders", "payments"]) await engine.createTopic({ name: `projects/p/topics/${name}` });
    await engine.createSubscription({
      name: "projects/p/subscriptions/orders-worker",
      topic: "projects/p/topics/orders",
    });
  });
  after(async () => {
    await engine?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test("auth - authorization: granted calls pass, others are PERMISSION_DENIED and counted", async () => {
    await runAsPrincipal(principal, async () => {
      assert.equal((await guarded.publish("projects/p/topics/orders", [message])).length, 1);
      await assert.rejects(guarded.publish("projects/p/topics/payments", [message]), { reason: "PERMISSION_DENIED" });
      await assert.rejects(guarded.deleteTopic("projects/p/topics/orders"), { reason: "PERMISSION_DENIED" });
      const pulled = await guarded.pull("projects/p/subscriptions/orders-worker", {
        maxMessages: 1,
        waitMs: 0,
        signal: new AbortController().signal,
      });
      assert.equal(pulled.length, 1);
      // A subscription cannot widen a grant: creating one needs subscribe on its topic.
      await assert.rejects(
        guarded.createSubscription({
          name: "projects/p/subscriptions/orders-spy",
          topic: "projects/p/topics/payments",
        }),
        { reason: "PERMISSION_DENIED" },
      );
    });
    assert.deepEqual(denials, ["grpc", "grpc", "grpc"]);
  });

  test("auth - authorization: lists show only granted resources; malformed names stay INVALID_ARGUMENT", async () => {
    await runAsPrincipal(principal, async () => {
      const page = await guarded.listTopics("p", { pageSize: 100, pageToken: "" });
      assert.deepEqual(
        page.items.map((topic) => topic.name),
        ["projects/p/topics/orders"],
      );
      await assert.rejects(guarded.publish("topics/orders", [message]), { reason: "INVALID_ARGUMENT" });
    });
  });

  test("auth - authorization: schemas need admin to change, any grant to read or attach", async () => {
    const avro = { type: "AVRO" as const, definition: '{"type": "string"}' };
    await engine.schemas.create("projects/p/schemas/orders-v1", avro);
    await engine.schemas.create("projects/p/schemas/payments-v1", avro);
    const reader: TokenPrincipal = {
      ...principal,
      grants: grantsFromClaim({ subscribe: ["schemas/orders-*"], admin: ["topics/typed-*"] }),
    };
    await runAsPrincipal(reader, async () => {
      const latest = await guarded.schemas.get("projects/p/schemas/orders-v1");
      assert.equal(
        (await guarded.schemas.get(`projects/p/schemas/orders-v1@${latest.revisionId}`)).revisionId,
        latest.revisionId,
      );
      await assert.rejects(guarded.schemas.commit("projects/p/schemas/orders-v1", avro), {
        reason: "PERMISSION_DENIED",
      });
      await assert.rejects(guarded.schemas.delete("projects/p/schemas/orders-v1"), { reason: "PERMISSION_DENIED" });
      await assert.rejects(guarded.schemas.get("projects/p/schemas/payments-v1"), { reason: "PERMISSION_DENIED" });
      const page = await guarded.schemas.list("p", { pageSize: 100, pageToken: "" });
      assert.deepEqual(
        page.items.map((schema) => schema.name),
        ["projects/p/schemas/orders-v1"],
      );
      const settings = (schema: string) => ({
        schema,
        encoding: "JSON" as const,
        firstRevisionId: "",
        lastRevisionId: "",
      });
      await guarded.createTopic({
        name: "projects/p/topics/typed-a",
        schemaSettings: settings("projects/p/schemas/orders-v1"),
      });
      await assert.rejects(
        guarded.createTopic({
          name: "projects/p/topics/typed-b",
          schemaSettings: settings("projects/p/schemas/payments-v1"),
        }),
        { reason: "PERMISSION_DENIED" },
      );
    });
  });

  test("auth - authorization: a schema's IAM binding widens a token's grants on that schema only", async () => {
    const avro = { type: "AVRO" as const, definition: '{"type": "string"}' };
    await engine.schemas.create("projects/p/schemas/iam-v1", avro);
    await engine.schemas.create("projects/p/schemas/iam-other", avro);
    await runAsPrincipal(principal, async () => {
      await assert.rejects(guarded.schemas.get("projects/p/schemas/iam-v1"), { reason: "PERMISSION_DENIED" });
    });
    await engine.setIamPolicy("projects/p/schemas/iam-v1", {
      version: 1,
      bindings: [{ role: "roles/pubsub.viewer", members: ["user:alice"] }],
      expectedEtag: new Uint8Array(),
    });
    await runAsPrincipal(principal, async () => {
      assert.equal((await guarded.schemas.get("projects/p/schemas/iam-v1")).name, "projects/p/schemas/iam-v1");
      await assert.rejects(guarded.schemas.commit("projects/p/schemas/iam-v1", avro), { reason: "PERMISSION_DENIED" });
      await assert.rejects(guarded.schemas.get("projects/p/schemas/iam-other"), { reason: "PERMISSION_DENIED" });
    });
    await engine.setIamPolicy("projects/p/schemas/iam-v1", {
      version: 1,
      bindings: [{ role: "roles/pubsub.editor", members: ["user:alice"] }],
      expectedEtag: new Uint8Array(),
    });
    await runAsPrincipal(principal, async () => {
      assert.equal((await guarded.schemas.commit("projects/p/schemas/iam-v1", avro)).name, "projects/p/schemas/iam-v1");
    });
  });

  test("auth - authorization: a call outside any request context fails closed", async () => {
    await assert.rejects(guarded.publish("projects/p/topics/orders", [message]), { reason: "INTERNAL" });
    assert.throws(() => guarded.watchTopic("projects/p/topics/orders", () => undefined), { reason: "INTERNAL" });
  });
});
