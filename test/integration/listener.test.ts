// One port: HTTP/1.1 and h2c side by side, TLS with ALPN, gRPC health, and SIGTERM drain.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { connect as http2Connect } from "node:http2";
import { request as httpsRequest } from "node:https";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { createSelfSigned } from "../harness/self-signed.js";
import { spawnServer } from "../harness/spawn-server.js";
import { startTestServer } from "../harness/start-test-server.js";

const healthProto = protoLoader.loadSync("node_modules/grpc-health-check/proto/health/v1/health.proto", {
  enums: String,
});
const pubsubProto = protoLoader.loadSync("google/pubsub/v1/pubsub.proto", {
  includeDirs: ["node_modules/google-proto-files"],
  longs: String,
});
type Ctor = new (address: string, credentials: grpc.ChannelCredentials, options?: object) => grpc.Client;
const healthPackage = grpc.loadPackageDefinition(healthProto) as unknown as {
  grpc: { health: { v1: { Health: Ctor } } };
};
const pubsubPackage = grpc.loadPackageDefinition(pubsubProto) as unknown as {
  google: { pubsub: { v1: { Publisher: Ctor; Subscriber: Ctor } } };
};

function http1Get(url: string, options: object = {}): Promise<{ status: number; version: string; body: string }> {
  return new Promise((resolve, reject) => {
    const make = url.startsWith("https") ? httpsRequest : httpRequest;
    const req = make(url, { agent: false, ...options }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, version: res.httpVersion, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

function http2Get(origin: string, path: string, options: object = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(origin, options);
    session.on("error", reject);
    const stream = session.request({ ":path": path });
    let status = 0;
    let body = "";
    stream.setEncoding("utf8");
    stream.on("response", (headers) => (status = Number(headers[":status"])));
    stream.on("data", (chunk) => (body += chunk));
    stream.on("end", () => {
      session.close();
      resolve({ status, body });
    });
    stream.on("error", reject);
  });
}

function healthCheck(client: grpc.Client): Promise<{ status: string }> {
  return new Promise((resolve, reject) => {
    (
      client as unknown as { check(r: object, cb: (e: grpc.ServiceError | null, v: { status: string }) => void): void }
    ).check({ service: "" }, (error, value) => (error === null ? resolve(value) : reject(error)));
  });
}

describe("listener", () => {
  it("listener - HTTP/1.1 and h2c prior knowledge are served on the same port", async () => {
    const server = await startTestServer();
    try {
      const http1 = await http1Get(`${server.url}/healthz`);
      assert.equal(http1.status, 200);
      assert.equal(http1.version, "1.1");
      const h2c = await http2Get(server.url, "/readyz");
      assert.equal(h2c.status, 200);
      assert.match(h2c.body, /ready/);
      const client = new healthPackage.grpc.health.v1.Health(server.hostPort, grpc.credentials.createInsecure());
      assert.equal((await healthCheck(client)).status, "SERVING");
      client.close();
      const missing = await http1Get(`${server.url}/nope`);
      assert.equal(missing.status, 404);
      assert.equal(JSON.parse(missing.body).error.status, "NOT_FOUND");
    } catch (error) {
      await server.close({ allowOpenConnections: true });
      throw error;
    }
    await server.close();
  });

  it("listener - gRPC error messages reach grpc-js readable (no %3A or %2C left encoded)", async () => {
    const server = await startTestServer();
    const publisher = new pubsubPackage.google.pubsub.v1.Publisher(server.hostPort, grpc.credentials.createInsecure());
    try {
      const error = await new Promise<grpc.ServiceError>((resolve) =>
        (publisher as unknown as { createTopic(r: object, cb: (e: grpc.ServiceError) => void): void }).createTopic(
          { name: "projects/p/topics/x" },
          resolve,
        ),
      );
      assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
      assert.match(error.details, /^name: topic id "x" must be 3 to 255 characters long, got 1$/);
    } finally {
      publisher.close();
    }
    await server.close();
  });

  it("listener - TLS with ALPN serves HTTP/1.1, HTTP/2 and gRPC with a self-signed certificate", async () => {
    const tls = createSelfSigned();
    const server = await startTestServer({ tlsCertPath: tls.certPath, tlsKeyPath: tls.keyPath });
    try {
      assert.match(server.url, /^https:/);
      const origin = `https://localhost:${server.port}`;
      const http1 = await http1Get(`${origin}/healthz`, { ca: tls.cert });
      assert.equal(http1.status, 200);
      const h2 = await http2Get(origin, "/healthz", { ca: tls.cert });
      assert.equal(h2.status, 200);
      const client = new healthPackage.grpc.health.v1.Health(
        `localhost:${server.port}`,
        grpc.credentials.createSsl(tls.cert),
      );
      assert.equal((await healthCheck(client)).status, "SERVING");
      client.close();
    } catch (error) {
      await server.close({ allowOpenConnections: true });
      throw error;
    } finally {
      rmSync(tls.dir, { recursive: true, force: true });
    }
    await server.close();
  });

  it("listener - SIGTERM ends a live StreamingPull with UNAVAILABLE and the process exits within the grace period", async () => {
    const server = await spawnServer([
      "--data-dir",
      (await import("node:fs")).mkdtempSync("/tmp/streamgate-drain-"),
      "--drain-ms",
      "3000",
    ]);
    const publisher = new pubsubPackage.google.pubsub.v1.Publisher(server.hostPort, grpc.credentials.createInsecure());
    const subscriber = new pubsubPackage.google.pubsub.v1.Subscriber(
      server.hostPort,
      grpc.credentials.createInsecure(),
    );
    const unary = (client: grpc.Client, method: string, request: object) =>
      new Promise<unknown>((resolve, reject) =>
        (client as unknown as Record<string, (r: object, cb: (e: Error | null, v: unknown) => void) => void>)[method]!(
          request,
          (error, value) => (error === null ? resolve(value) : reject(error)),
        ),
      );
    try {
      await unary(publisher, "createTopic", { name: "projects/drain/topics/top" });
      await unary(subscriber, "createSubscription", {
        name: "projects/drain/subscriptions/sub",
        topic: "projects/drain/topics/top",
      });
      const call = (
        subscriber as unknown as { streamingPull(): grpc.ClientDuplexStream<object, object> }
      ).streamingPull();
      call.write({ subscription: "projects/drain/subscriptions/sub", streamAckDeadlineSeconds: 10 });
      const ended = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
      call.on("data", () => undefined);
      call.on("error", () => undefined);
      await unary(publisher, "publish", { topic: "projects/drain/topics/top", messages: [{ data: Buffer.from("x") }] });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const started = Date.now();
      const exit = server.kill("SIGTERM");
      const status = await ended;
      assert.equal(status.code, grpc.status.UNAVAILABLE, `stream ended with ${status.code} ${status.details}`);
      const { code } = await exit;
      assert.equal(code, 0);
      assert.ok(Date.now() - started < 5_000, "drain took longer than the grace period");
    } finally {
      publisher.close();
      subscriber.close();
      await server.kill("SIGKILL");
    }
  });
});
