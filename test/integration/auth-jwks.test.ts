// Auth with a JWKS URL (a tiny local HTTP server) for RS256, ES256 and EdDSA keys made by jose; and the startup policy.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { exportJWK, generateKeyPair, type JWK, type KeyLike, SignJWT } from "jose";
import { resolveServerOptions } from "../../src/config/index.js";
import { createServer } from "../../src/server/index.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";
import { withTimeout } from "../harness/wait-for.js";

const AUDIENCE = "streamgate-jwks-test";
const algorithms = ["RS256", "ES256", "EdDSA"] as const;
type Algorithm = (typeof algorithms)[number];

describe("auth - JWKS", () => {
  let jwksServer: Server;
  let jwksRequests = 0;
  let server: TestServer;
  const keys = new Map<Algorithm, { privateKey: KeyLike; kid: string }>();
  const strangers = new Map<Algorithm, KeyLike>();
  const project = uniqueName("jwks");
  const topic = `projects/${project}/topics/events`;

  before(async () => {
    const published: JWK[] = [];
    for (const alg of algorithms) {
      const pair = await generateKeyPair(alg, { crv: alg === "EdDSA" ? "Ed25519" : undefined });
      const kid = `key-${alg.toLowerCase()}`;
      keys.set(alg, { privateKey: pair.privateKey, kid });
      published.push({ ...(await exportJWK(pair.publicKey)), kid, alg, use: "sig" });
      strangers.set(alg, (await generateKeyPair(alg, { crv: alg === "EdDSA" ? "Ed25519" : undefined })).privateKey);
    }
    const body = JSON.stringify({ keys: published });
    jwksServer = createHttpServer((_request, response) => {
      jwksRequests++;
      response.writeHead(200, { "content-type": "application/json", connection: "close" }).end(body);
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, "127.0.0.1", resolve));
    const { port } = jwksServer.address() as AddressInfo;
    server = await startTestServer({ authJwksUrl: `http://127.0.0.1:${port}/jwks.json`, authAudience: AUDIENCE });
    await server.server.engine.createTopic({ name: topic });
  });
  after(async () => {
    await server?.close();
    await new Promise((resolve) => jwksServer?.close(resolve));
  });

  async function token(alg: Algorithm, options: { kid?: string; key?: KeyLike } = {}): Promise<string> {
    const own = keys.get(alg)!;
    return new SignJWT({ streamgate: { publish: ["events"] } })
      .setProtectedHeader({ alg, kid: options.kid ?? own.kid })
      .setSubject(`client-${alg}`)
      .setAudience(AUDIENCE)
      .setExpirationTime("5m")
      .sign(options.key ?? own.privateKey);
  }
  async function publish(bearer: string): Promise<{ status: number; reason: string }> {
    const response = await fetch(`${server.url}/v1/${topic}:publish`, {
      method: "POST",
      headers: { connection: "close", "content-type": "application/json", authorization: `Bearer ${bearer}` },
      body: JSON.stringify({ messages: [{ data: "aGk=" }] }),
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await response.json()) as { error?: { details?: { reason?: string }[] } };
    return { status: response.status, reason: body.error?.details?.[0]?.reason ?? "" };
  }

  for (const alg of algorithms) {
    test(`auth - JWKS ${alg}: its key verifies; a stranger's key under the same kid and an unknown kid are refused`, async () => {
      assert.deepEqual(await publish(await token(alg)), { status: 200, reason: "" });
      assert.deepEqual(await publish(await token(alg, { key: strangers.get(alg)! })), {
        status: 401,
        reason: "TOKEN_BAD_SIGNATURE",
      });
      assert.deepEqual(await publish(await token(alg, { kid: "no-such-key", key: strangers.get(alg)! })), {
        status: 401,
        reason: "TOKEN_UNKNOWN_KEY",
      });
    });
  }

  test("auth - JWKS: the key set is cached; HS256 tokens are refused without a shared secret", async () => {
    assert.ok(
      jwksRequests >= 1 && jwksRequests <= 4,
      `JWKS fetched ${jwksRequests} times (cached, refetched on unknown kid)`,
    );
    const hs256 = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setAudience(AUDIENCE)
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode("x".repeat(40)));
    assert.deepEqual(await publish(hs256), { status: 401, reason: "TOKEN_ALGORITHM_REJECTED" });
  });
});

describe("auth - startup policy", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "streamgate-auth-startup-"));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  test("auth - a non-loopback host without auth refuses to start; --insecure starts it", async () => {
    await assert.rejects(
      createServer(resolveServerOptions({ host: "0.0.0.0", port: 0, dataDir, logLevel: "silent" })),
      (error: { reason?: string; message?: string }) =>
        error.reason === "AUTH_NOT_CONFIGURED" && /--insecure/.test(error.message ?? ""),
    );
    const open = await createServer(
      resolveServerOptions({ host: "0.0.0.0", port: 0, dataDir, logLevel: "silent", insecure: true }),
    );
    await open.listen();
    await open.close();
  });

  test("auth - --auth-secret-file: the HS256 secret is read from the file (trailing newline trimmed)", async () => {
    const secret = "file-secret-0123456789abcdefghijklmnopqrstuvwxyz";
    const secretFile = join(dataDir, "secret.txt");
    writeFileSync(secretFile, `${secret}\n`);
    const server = await startTestServer({ authSecretFile: secretFile });
    try {
      const topic = `projects/${uniqueName("secretfile")}/topics/tick`;
      await server.server.engine.createTopic({ name: topic });
      const sign = (key: string) =>
        new SignJWT({ streamgate: { publish: ["tick"] } })
          .setProtectedHeader({ alg: "HS256" })
          .setExpirationTime("5m")
          .sign(new TextEncoder().encode(key));
      const statuses: number[] = [];
      for (const key of [secret, `${secret}x`]) {
        const response = await fetch(`${server.url}/v1/${topic}:publish`, {
          method: "POST",
          headers: {
            connection: "close",
            "content-type": "application/json",
            authorization: `Bearer ${await sign(key)}`,
          },
          body: JSON.stringify({ messages: [{ data: "aGk=" }] }),
          signal: AbortSignal.timeout(10_000),
        });
        await response.arrayBuffer();
        statuses.push(response.status);
      }
      assert.deepEqual(statuses, [200, 401]);
    } finally {
      await server.close();
    }
  });

  test("auth - a short shared secret is refused with a clear message", async () => {
    await assert.rejects(
      createServer(
        resolveServerOptions({ host: "127.0.0.1", port: 0, dataDir, logLevel: "silent", authSecret: "short" }),
      ),
      /at least 32 bytes/,
    );
  });

  test("auth - streamgate serve on 0.0.0.0 without auth exits 2 and says how to fix it", async () => {
    const bin = fileURLToPath(new URL("../../bin/streamgate.mjs", import.meta.url));
    const child = spawn(process.execPath, [bin, "serve", "--host", "0.0.0.0", "--port", "0", "--data-dir", dataDir], {
      env: { ...process.env, STREAMGATE_INSECURE: "", STREAMGATE_AUTH_SECRET: "", STREAMGATE_AUTH_JWKS_URL: "" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
    });
    const code = await withTimeout(
      new Promise<number | null>((resolve) => child.once("exit", (exitCode) => resolve(exitCode))),
      15_000,
      "serve exit",
    ).finally(() => child.kill());
    assert.equal(code, 2, stderr);
    assert.match(stderr, /refusing to serve 0\.0\.0\.0 without authentication.*--auth-secret.*--insecure/);
  });
});
