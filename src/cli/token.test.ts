// `streamgate token create` with a private key, grants parsing and the words `token inspect` uses for patterns.
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, describe, test } from "node:test";
import { decodeProtectedHeader, jwtVerify } from "jose";
import { UsageError } from "./args.js";
import { main } from "./main.js";
import { describePattern, parseGrants } from "./token.js";

const dir = mkdtempSync(join(tmpdir(), "streamgate-token-"));
after(() => rmSync(dir, { recursive: true, force: true }));

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    stdin: Readable.from([""]),
    env: {},
  });
  return { code, stdout, stderr };
}

describe("token create", () => {
  for (const [type, algorithm] of [
    ["ed25519", "EdDSA"],
    ["ec", "ES256"],
    ["rsa", "RS256"],
  ] as const) {
    test(`token - --private-key signs with ${algorithm} (${type}), the public key verifies it`, async () => {
      const { privateKey, publicKey } =
        type === "ec"
          ? generateKeyPairSync("ec", { namedCurve: "P-256" })
          : type === "rsa"
            ? generateKeyPairSync("rsa", { modulusLength: 2048 })
            : generateKeyPairSync("ed25519");
      const path = join(dir, `${type}.pem`);
      writeFileSync(path, privateKey.export({ format: "pem", type: "pkcs8" }));
      const created = await run([
        ...["token", "create", "--private-key", path, "--kid", "k1", "--sub", "svc"],
        ...["--grant", "subscribe:orders", "--ttl", "10m", "--auth-issuer", "https://iss", "--auth-audience", "a,b"],
      ]);
      assert.equal(created.code, 0, created.stderr);
      const token = created.stdout.trim();
      assert.deepEqual(decodeProtectedHeader(token), { alg: algorithm, typ: "JWT", kid: "k1" });
      const { payload } = await jwtVerify(token, publicKey, { issuer: "https://iss", audience: "a" });
      assert.equal(payload.sub, "svc");
      assert.deepEqual(payload.streamgate, { subscribe: ["orders"] });
      assert.equal(payload.exp! - payload.iat!, 600);
    });
  }

  test("token - without a key or a grant the command says what to give", async () => {
    const noKey = await run(["token", "create", "--sub", "x", "--grant", "admin:*"]);
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /no key to sign with: give the server's --auth-secret-file/);
    const noGrant = await run(["token", "create", "--sub", "x", "--auth-secret", "s".repeat(40)]);
    assert.equal(noGrant.code, 2);
    assert.match(noGrant.stderr, /give at least one --grant PERMISSION:PATTERN/);
    const badPattern = await run([
      "token",
      "create",
      "--sub",
      "x",
      "--auth-secret",
      "s".repeat(40),
      "--grant",
      "admin:a/b/c",
    ]);
    assert.equal(badPattern.code, 2);
    assert.match(badPattern.stderr, /--grant: pattern "a\/b\/c" is not NAME, KIND\/NAME or projects\/P\/KIND\/NAME/);
  });

  test("token - grants parse into the streamgate claim; patterns read as words", () => {
    assert.deepEqual(parseGrants(["publish:topics/orders*", "publish:audit", "admin:*"]), {
      publish: ["topics/orders*", "audit"],
      admin: ["*"],
    });
    assert.throws(() => parseGrants(["write:orders"]), UsageError);
    assert.throws(() => parseGrants(["publish:"]), UsageError);
    assert.equal(describePattern("*"), "every resource of every project");
    assert.equal(describePattern("orders-*"), "resources named orders-* in any project");
    assert.equal(describePattern("subscriptions/w"), "subscriptions named w in any project");
    assert.equal(describePattern("projects/shop/topics/*"), "topics named * in project shop");
  });
});
