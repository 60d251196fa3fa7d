// Auth edge cases against real servers: a token not valid yet (nbf), and a JWKS that cannot be fetched (nothing
// listening, HTTP 500, a stalled body), which is the server's problem (UNAVAILABLE / 503, at once for a while after
// a failed fetch), logged once, and never touches HS256 tokens.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { exportJWK, generateKeyPair, type KeyLike, SignJWT } from "jose";
import { pino } from "pino";
import { resolveServerOptions } from "../../src/config/index.js";
import { createServer } from "../../src/server/index.js";
import { createGrpcJsClients, grpc } from "../harness/grpc-js-clients.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";

const SECRET = "auth-edge-cases-secret-0123456789abcdefghij";
const AUDIENCE = "streamgate-edge-cases";
const KID = "edge-es256";
const project = uniqueName("authedge");
const topic = `projects/${project}/topics/events`;
/** The JWKS fetch deadline (remote-key-set.ts) plus room for a loaded machine. */
const OUTAGE_ANSWER_WITHIN_MS = 5_000 + 3_000;
/** After a failed fetch, requests are refused at once (failFastMs, 5 s): no fetch, so well under the deadline. */
const FAIL_FAST_WITHIN_MS = 1_000;

let privateKey: KeyLike;
let jwksBody = "";

/** A JWKS endpoint; whoever starts it closes it (in its describe's `after`, or its test's `finally`). */
interface JwksServer {
  url: string;
  /** Cuts the connections still open (a stalled response) and stops listening; harmless when already closed. */
  close(): Promise<void>;
}

async function serveJwks(handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<JwksServer> {
  const server = createHttpServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

async function sign(alg: "HS256" | "ES256", options: { notBeforeSeconds?: number } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ streamgate: { publish: ["events"] } })
    .setProtectedHeader(alg === "HS256" ? { alg } : { alg, kid: KID })
    .setSubject(`client-${alg}`)
    .setAudience(AUDIENCE)
    .setExpirationTime(now + 600);
  if (options.notBeforeSeconds !== undefined) jwt.setNotBefore(now + options.notBeforeSeconds);
  return jwt.sign(alg === "HS256" ? new TextEncoder().encode(SECRET) : privateKey);
}

interface RestOutcome {
  status: number;
  reason: string;
  wwwAuthenticate: string | null;
}
async function restPublish(server: Pick<TestServer, "url">, bearer: string): Promise<RestOutcome> {
  const response = await fetch(`${server.url}/v1/${topic}:publish`, {
    method: "POST",
    headers: { connection: "close", "content-type": "application/json", authorization: `Bearer ${bearer}` },
    body: JSON.stringify({ messages: [{ data: "aGk=" }] }),
    signal: AbortSignal.timeout(15_000),
  });
  const body = (await response.json()) as { error?: { details?: { reason?: string }[] } };
  return {
    status: response.status,
    reason: body.error?.details?.[0]?.reason ?? "",
    wwwAuthenticate: response.headers.get("www-authenticate"),
  };
}

/** A grpc-js Publish: "OK" or "<code name>: <details>". */
async function grpcPublish(server: Pick<TestServer, "hostPort">, bearer: string): Promise<string> {
  const clients = createGrpcJsClients(server.hostPort);
  try {
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${bearer}`);
    const publish = (clients.publisher as unknown as Record<string, (...args: unknown[]) => unknown>).Publish!;
    return await new Promise<string>((resolve) => {
      publish.call(
        clients.publisher,
        { topic, messages: [{ data: Buffer.from("hi") }] },
        metadata,
        { deadline: Date.now() + 15_000 },
        (error: grpc.ServiceError | null) =>
          resolve(error === null ? "OK" : `${grpc.status[error.code]}: ${error.details}`),
      );
    });
  } finally {
    clients.close();
  }
}

async function timed<T>(work: Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await work;
  return { value, ms: performance.now() - started };
}

before(async () => {
  const pair = await generateKeyPair("ES256");
  privateKey = pair.privateKey;
  jwksBody = JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: KID, alg: "ES256", use: "sig" }] });
});

describe("auth - nbf", () => {
  let jwks: JwksServer | undefined;
  let server: TestServer;
  before(async () => {
    jwks = await serveJwks((_request, response) => {
      response.writeHead(200, { "content-type": "application/json", connection: "close" }).end(jwksBody);
    });
    server = await startTestServer({ authSecret: SECRET, authJwksUrl: jwks.url, authAudience: AUDIENCE });
    await server.server.engine.createTopic({ name: topic });
  });
  after(async () => {
    await server?.close();
    await jwks?.close();
  });

  for (const alg of ["HS256", "ES256"] as const) {
    test(`auth - nbf: a ${alg} token valid only in 5 minutes is refused on REST and gRPC, every time`, async () => {
      assert.deepEqual(await restPublish(server, await sign(alg)), { status: 200, reason: "", wwwAuthenticate: null });
      const early = await sign(alg, { notBeforeSeconds: 300 });
      for (let attempt = 0; attempt < 2; attempt++) {
        assert.deepEqual(await restPublish(server, early), {
          status: 401,
          reason: "TOKEN_NOT_YET_VALID",
          wwwAuthenticate: 'Bearer realm="streamgate"',
        });
        assert.equal(
          await grpcPublish(server, early),
          "UNAUTHENTICATED: token is not valid yet (nbf is in the future)",
        );
      }
      // Inside the 30 s clock tolerance a token is accepted.
      assert.equal((await restPublish(server, await sign(alg, { notBeforeSeconds: 10 }))).status, 200);
    });
  }
});

describe("auth - JWKS unreachable", () => {
  const outages: [string, () => Promise<JwksServer>][] = [
    [
      "nothing listens",
      async () => {
        const jwks = await serveJwks(() => {});
        await jwks.close();
        return jwks;
      },
    ],
    ["it answers HTTP 500", () => serveJwks((_request, response) => response.writeHead(500).end("down"))],
    [
      "it sends headers and stalls",
      () =>
        serveJwks((_request, response) => {
          response.writeHead(200, { "content-type": "application/json" });
          response.write('{"keys":[');
        }),
    ],
  ];
  for (const [name, start] of outages) {
    describe(`auth - JWKS unreachable: ${name}`, () => {
      let jwks: JwksServer | undefined;
      let server: TestServer;
      before(async () => {
        jwks = await start();
        server = await startTestServer({ authSecret: SECRET, authJwksUrl: jwks.url, authAudience: AUDIENCE });
        await server.server.engine.createTopic({ name: topic });
      });
      after(async () => {
        await server?.close();
        await jwks?.close();
      });

      test(`auth - JWKS unreachable (${name}): JWKS tokens get UNAVAILABLE / 503 in bounded time; HS256 tokens work meanwhile`, async () => {
        const jwksToken = await sign("ES256");
        const hs256Token = await sign("HS256");
        const rest = timed(restPublish(server, jwksToken));
        const grpcCall = timed(grpcPublish(server, jwksToken));
        // Started while the JWKS fetch is still pending (for the stalled server): HS256 never waits for it.
        const hs256 = await timed(Promise.all([restPublish(server, hs256Token), grpcPublish(server, hs256Token)]));
        assert.deepEqual(hs256.value, [{ status: 200, reason: "", wwwAuthenticate: null }, "OK"]);
        assert.ok(hs256.ms < 3_000, `HS256 requests took ${Math.round(hs256.ms)} ms`);

        const restOutcome = await rest;
        assert.deepEqual(restOutcome.value, { status: 503, reason: "AUTH_KEYS_UNAVAILABLE", wwwAuthenticate: null });
        assert.ok(restOutcome.ms < OUTAGE_ANSWER_WITHIN_MS, `REST answered after ${Math.round(restOutcome.ms)} ms`);
        const grpcOutcome = await grpcCall;
        assert.equal(grpcOutcome.value, "UNAVAILABLE: the keys that verify tokens (JWKS) cannot be fetched; retry");
        assert.ok(grpcOutcome.ms < OUTAGE_ANSWER_WITHIN_MS, `gRPC answered after ${Math.round(grpcOutcome.ms)} ms`);

        // Right after the failed fetch: refused at once, not after another fetch deadline.
        const again = await timed(Promise.all([restPublish(server, jwksToken), grpcPublish(server, jwksToken)]));
        assert.deepEqual(again.value, [
          { status: 503, reason: "AUTH_KEYS_UNAVAILABLE", wwwAuthenticate: null },
          "UNAVAILABLE: the keys that verify tokens (JWKS) cannot be fetched; retry",
        ]);
        assert.ok(again.ms < FAIL_FAST_WITHIN_MS, `the next requests answered after ${Math.round(again.ms)} ms`);
      });
    });
  }
});

describe("auth - JWKS outage log", () => {
  test("auth - JWKS outage log: one warn line with the URL and the error for several refused requests, no token", async () => {
    const jwks = await serveJwks((_request, response) => response.writeHead(500).end("down"));
    const jwksUrl = jwks.url;
    const lines: string[] = [];
    const dataDir = mkdtempSync(join(tmpdir(), "streamgate-test-"));
    const server = await createServer(
      resolveServerOptions({
        host: "127.0.0.1",
        port: 0,
        dataDir,
        logLevel: "info",
        authSecret: SECRET,
        authJwksUrl: jwksUrl,
        authAudience: AUDIENCE,
      }),
      { logger: pino({ level: "info" }, { write: (line: string) => lines.push(line) }) },
    );
    try {
      const address = await server.listen();
      const target = { url: address.url, hostPort: `${address.host}:${address.port}` };
      await server.engine.createTopic({ name: topic });
      const jwksToken = await sign("ES256");
      for (let request = 0; request < 4; request++) {
        assert.equal((await restPublish(target, jwksToken)).reason, "AUTH_KEYS_UNAVAILABLE");
      }
      assert.equal(await grpcPublish(target, await sign("HS256")), "OK");
      const jwksLines = lines
        .map((line) => JSON.parse(line) as { level: number; msg: string })
        .filter(({ msg }) => msg.includes("JWKS"));
      assert.deepEqual(
        jwksLines.map(({ level }) => level),
        [40],
        "one warn line (pino level 40)",
      );
      assert.match(
        jwksLines[0]!.msg,
        new RegExp(`^JWKS ${jwksUrl}: fetching the keys fails \\(GET ${jwksUrl} answered HTTP 500`),
      );
      assert.ok(!lines.some((line) => line.includes(jwksToken.split(".")[2]!)), "no token in the log");
    } finally {
      await server.close();
      await jwks.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
