// Limits key on the authenticated principal (the token's subject), not the address: two HS256 tokens from
// the same client IP get separate publish buckets and subscription counts.
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { SignJWT } from "jose";
import WebSocket from "ws";
import { createGrpcJsClients } from "../harness/grpc-js-clients.js";
import { fetchJson } from "../harness/rest-client.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { withTimeout } from "../harness/wait-for.js";

const SECRET = "limits-test-secret-with-enough-entropy-0123456789";

async function tokenFor(subject: string): Promise<string> {
  return new SignJWT({ streamgate: { admin: ["projects/limits/*/*"] } })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(subject)
    .setIssuedAt()
    .setExpirationTime("10m")
    .sign(new TextEncoder().encode(SECRET));
}

describe("limits - authenticated principals", () => {
  let server: TestServer;
  let alice: string;
  let bob: string;
  const topicPath = "/v1/projects/limits/topics/orders";

  before(async () => {
    server = await startTestServer({
      authSecret: SECRET,
      publishRate: 2,
      publishBurst: 20,
      maxSubscriptionsPerPrincipal: 1,
    });
    alice = await tokenFor("alice");
    bob = await tokenFor("bob");
    const created = await fetchJson(
      server.url,
      "PUT",
      topicPath,
      {},
      { headers: { authorization: `Bearer ${alice}` } },
    );
    assert.equal(created.status, 200, created.text);
  });

  after(async () => {
    await server.close();
  });

  it("limits - one token's publish flood gets 429 RATE_LIMITED while another token's publishes from the same address all succeed", async () => {
    const publish = (token: string, count: number) =>
      fetchJson(
        server.url,
        "POST",
        `${topicPath}:publish`,
        { messages: Array.from({ length: count }, () => ({ data: "eA==" })) },
        { headers: { authorization: `Bearer ${token}` } },
      );
    const flood = (async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 10; i++) statuses.push((await publish(alice, 10)).status);
      return statuses;
    })();
    const steady = Promise.all(Array.from({ length: 15 }, () => publish(bob, 1)));
    const [flooded, served] = await Promise.all([flood, steady]);
    assert.ok(flooded.filter((status) => status === 429).length >= 5, `alice refused: ${flooded.join(",")}`);
    assert.deepEqual(
      served.map((answer) => answer.status),
      served.map(() => 200),
      "every publish of bob succeeds",
    );
  });

  it("limits - a gRPC publish with one token over its rate fails RESOURCE_EXHAUSTED; the other token is served", async () => {
    const clients = createGrpcJsClients(server.hostPort);
    const call = (token: string, count: number) => {
      const fn = (clients.publisher as unknown as Record<string, (...args: unknown[]) => grpc.ClientUnaryCall>)
        .Publish!;
      const metadata = new grpc.Metadata();
      metadata.set("authorization", `Bearer ${token}`);
      return new Promise<unknown>((resolve, reject) => {
        fn.call(
          clients.publisher,
          {
            topic: "projects/limits/topics/orders",
            messages: Array.from({ length: count }, () => ({ data: Buffer.from("x") })),
          },
          metadata,
          { deadline: new Date(Date.now() + 10_000) },
          (error: grpc.ServiceError | null, response: unknown) => (error === null ? resolve(response) : reject(error)),
        );
      });
    };
    try {
      // Whatever alice's bucket refilled since the flood above, full-burst calls soon find it empty.
      let failure: grpc.ServiceError | undefined;
      for (let attempt = 0; attempt < 5 && failure === undefined; attempt++) {
        failure = await call(alice, 20).then(
          () => undefined,
          (error: grpc.ServiceError) => error,
        );
      }
      assert.equal(failure?.code, grpc.status.RESOURCE_EXHAUSTED, String(failure));
      await call(bob, 1);
    } finally {
      clients.close();
    }
  });

  it("limits - WebSocket publishes count against the token of the upgrade: alice's burst is refused, bob's small publish accepted", async () => {
    const publishOver = async (token: string, count: number) => {
      const ws = new WebSocket(`${server.url.replace("http", "ws")}/v1/ws`, {
        headers: { authorization: `Bearer ${token}` },
      });
      try {
        await withTimeout(
          new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject)),
          5_000,
          "open",
        );
        const answer = withTimeout(
          new Promise<Record<string, unknown>>((resolve) =>
            ws.once("message", (data) => resolve(JSON.parse(String(data)) as Record<string, unknown>)),
          ),
          5_000,
          "publish answer",
        );
        ws.send(
          JSON.stringify({
            type: "publish",
            ref: "r",
            topic: "projects/limits/topics/orders",
            messages: Array.from({ length: count }, () => ({ data: "eA==" })),
          }),
        );
        return await answer;
      } finally {
        ws.close();
        await withTimeout(new Promise((resolve) => ws.once("close", resolve)), 5_000, "close");
      }
    };
    // alice's bucket was emptied by the calls above (20 messages need a full bucket: 10 s at 2/s).
    const refused = await publishOver(alice, 20);
    assert.equal(refused.type, "error");
    assert.equal(refused.reason, "RATE_LIMITED");
    const accepted = await publishOver(bob, 2);
    assert.equal(accepted.type, "published", JSON.stringify(accepted));
  });

  it("limits - each token has its own subscription count", async () => {
    const open = (token: string) =>
      new Promise<{ status: number; text: () => Promise<string>; close: () => void }>((resolve, reject) => {
        const request = httpRequest(
          `${server.url}${topicPath}/events`,
          { agent: false, headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" } },
          (response) => {
            let body = "";
            response.setEncoding("utf8");
            response.on("data", (chunk: string) => {
              body += chunk;
            });
            const ended = new Promise<string>((done) => response.once("close", () => done(body)));
            resolve({ status: response.statusCode ?? 0, text: () => ended, close: () => request.destroy() });
          },
        );
        request.on("error", reject);
        request.end();
      });
    const first = await open(alice);
    const streams = [first];
    try {
      assert.equal(first.status, 200);
      const second = await open(alice);
      streams.push(second);
      assert.equal(second.status, 429);
      const reason = (JSON.parse(await second.text()) as { error: { details: { reason: string }[] } }).error.details[0]
        ?.reason;
      assert.equal(reason, "TOO_MANY_PRINCIPAL_SUBSCRIPTIONS");
      const other = await open(bob);
      streams.push(other);
      assert.equal(other.status, 200, "bob is not limited by alice's subscription");
    } finally {
      for (const stream of streams) stream.close();
    }
  });
});
