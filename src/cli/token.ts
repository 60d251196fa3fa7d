// `streamgate token create|inspect`: mint a JWT with the server's own key settings, and explain what a token may do
// and why a server would refuse it.
import { readFileSync } from "node:fs";
import type { ServerOptions } from "../config/index.js";
import { StreamgateError } from "../errors/index.js";
import { CliError, type OptionSpec, parseDurationSeconds, UsageError } from "./args.js";
import { type CommandGroup, defineCommand } from "./command.js";
import { formatFields } from "./output.js";
import { resolveCommandOptions, serveFlags } from "./serve.js";

/** The serve flags that say which key signs and checks tokens; `token` reads them from the same places as serve. */
const keyFlags = {
  config: serveFlags.config!,
  "auth-secret": serveFlags["auth-secret"]!,
  "auth-secret-file": serveFlags["auth-secret-file"]!,
  "auth-jwks-url": serveFlags["auth-jwks-url"]!,
  "auth-issuer": serveFlags["auth-issuer"]!,
  "auth-audience": serveFlags["auth-audience"]!,
} satisfies Record<string, OptionSpec>;

const permissions = ["publish", "subscribe", "admin"] as const;
type GrantPermission = (typeof permissions)[number];

/** The server's key settings from --config, env and flags, as serve resolves them. */
function keySettings(values: Readonly<Record<string, unknown>>, env: NodeJS.ProcessEnv): ServerOptions {
  const keyValues = Object.fromEntries(Object.keys(keyFlags).map((flag) => [flag, values[flag]]));
  return resolveCommandOptions(keyValues, env);
}

/** The HS256 secret of `options`, or null when none is configured. */
function readSecret(options: ServerOptions): string | null {
  if (options.authSecretFile === null) return options.authSecret;
  try {
    return readFileSync(options.authSecretFile, "utf8").trim();
  } catch (error) {
    throw new CliError(
      `cannot read the auth secret file ${options.authSecretFile} (${(error as NodeJS.ErrnoException).code ?? error}): fix --auth-secret-file, or start the server once with --auth-secret-generate`,
    );
  }
}

/** Grants from repeated `PERMISSION:PATTERN` flags, as the `streamgate` claim. */
export function parseGrants(entries: readonly string[]): Partial<Record<GrantPermission, string[]>> {
  const claim: Partial<Record<GrantPermission, string[]>> = {};
  for (const entry of entries) {
    const colon = entry.indexOf(":");
    const permission = entry.slice(0, colon) as GrantPermission;
    const pattern = entry.slice(colon + 1);
    if (colon <= 0 || !permissions.includes(permission) || pattern === "") {
      throw new UsageError(
        `--grant: expected PERMISSION:PATTERN with PERMISSION publish, subscribe or admin (e.g. publish:topics/orders*), got ${JSON.stringify(entry)}`,
      );
    }
    claim[permission] = [...(claim[permission] ?? []), pattern];
  }
  return claim;
}

const createCommand = defineCommand(
  {
    path: "token create",
    summary: "Mint a bearer JWT signed with the server's secret (or a private key) and print it.",
    details:
      "The key, issuer and audience come from the same flags, environment and --config as serve, so a token\n" +
      "minted next to the server is accepted by it. Grants: PERMISSION:PATTERN, where PERMISSION is publish,\n" +
      "subscribe or admin and PATTERN is NAME, KIND/NAME or projects/P/KIND/NAME with * wildcards (docs/auth.md).",
    positionals: [],
    options: {
      sub: { type: "string", valueName: "NAME", description: "Required: the subject (who the token is for)" },
      grant: {
        type: "string",
        multiple: true,
        valueName: "PERMISSION:PATTERN",
        description: "What the token may do, e.g. publish:topics/orders* or admin:*",
      },
      ttl: { type: "string", valueName: "DURATION", description: "Lifetime, e.g. 15m, 1h, 7d", defaultText: "1h" },
      "private-key": {
        type: "string",
        valueName: "PEM",
        description: "Sign with this private key (RS256/ES256/EdDSA; its public key in the server's JWKS) instead",
      },
      kid: { type: "string", valueName: "KID", description: "Key id in the header (with --private-key)" },
      ...keyFlags,
    },
    examples: [
      "streamgate token create --auth-secret-file secret.txt --sub orders-service --grant 'publish:topics/orders*' --grant subscribe:subscriptions/orders-worker --ttl 1h",
      "streamgate token create --config streamgate.yaml --sub ops --grant 'admin:*'",
      "streamgate token create --private-key key.pem --kid k1 --sub svc --grant subscribe:orders",
    ],
  },
  async ({ values }, io) => {
    const subject = values.sub?.trim() ?? "";
    if (subject === "") throw new UsageError("--sub is required (see streamgate token create --help)");
    const claim = parseGrants(values.grant ?? []);
    if (Object.keys(claim).length === 0) {
      throw new UsageError(
        "give at least one --grant PERMISSION:PATTERN (e.g. --grant 'admin:*'); a token without grants may do nothing",
      );
    }
    const ttlSeconds = Math.round(parseDurationSeconds(values.ttl ?? "1h", "--ttl"));
    if (ttlSeconds < 1) throw new UsageError("--ttl: must be at least 1s");
    const options = keySettings(values, io.env);
    const { grantsFromClaim } = await import("../auth/index.js");
    try {
      grantsFromClaim(claim);
    } catch (error) {
      throw new UsageError(
        `--grant: ${(error as Error).message.replace(/^token claim "streamgate" is invalid: /, "")}`,
      );
    }
    const { SignJWT, importPKCS8 } = await import("jose");
    const audience = (options.authAudience ?? "").split(",")[0]?.trim() ?? "";
    const jwt = new SignJWT({ streamgate: claim })
      .setSubject(subject)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds);
    if (options.authIssuer !== null) jwt.setIssuer(options.authIssuer);
    if (audience !== "") jwt.setAudience(audience);
    let token: string;
    if (values["private-key"] !== undefined) {
      const { key, algorithm } = await loadPrivateKey(values["private-key"], importPKCS8);
      jwt.setProtectedHeader({ alg: algorithm, typ: "JWT", ...(values.kid === undefined ? {} : { kid: values.kid }) });
      token = await jwt.sign(key);
    } else {
      const secret = readSecret(options);
      if (secret === null) {
        throw new UsageError(
          "no key to sign with: give the server's --auth-secret-file (or $STREAMGATE_AUTH_SECRET, or --config with authSecretFile), or --private-key",
        );
      }
      if (Buffer.byteLength(secret) < 32)
        throw new CliError("the HS256 secret is shorter than 32 bytes; the server refuses it too");
      jwt.setProtectedHeader({ alg: "HS256", typ: "JWT" });
      token = await jwt.sign(new TextEncoder().encode(secret));
    }
    io.stdout.write(`${token}\n`);
    return 0;
  },
);

async function loadPrivateKey(
  path: string,
  importPKCS8: typeof import("jose").importPKCS8,
): Promise<{ key: CryptoKey; algorithm: string }> {
  let pem: string;
  try {
    pem = readFileSync(path, "utf8");
  } catch (error) {
    throw new CliError(`--private-key: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? error})`);
  }
  const { createPrivateKey } = await import("node:crypto");
  let type: string | undefined;
  let pkcs8: string;
  try {
    const key = createPrivateKey(pem);
    type = key.asymmetricKeyType;
    pkcs8 = key.export({ format: "pem", type: "pkcs8" }).toString();
  } catch {
    throw new CliError(`--private-key: ${path} is not a PEM private key`);
  }
  const algorithm = type === "rsa" ? "RS256" : type === "ec" ? "ES256" : type === "ed25519" ? "EdDSA" : undefined;
  if (algorithm === undefined)
    throw new CliError(`--private-key: keys of type ${type} are not supported (RSA, EC P-256, Ed25519)`);
  return { key: (await importPKCS8(pkcs8, algorithm)) as CryptoKey, algorithm };
}

/** What a grant pattern covers, in words. */
export function describePattern(pattern: string): string {
  const parts = pattern.split("/");
  const kinds = (kind: string) => (kind === "*" ? "resources" : kind);
  if (parts.length === 1)
    return pattern === "*" ? "every resource of every project" : `resources named ${pattern} in any project`;
  if (parts.length === 2) return `${kinds(parts[0]!)} named ${parts[1]} in any project`;
  return `${kinds(parts[2]!)} named ${parts[3]} in project ${parts[1]}`;
}

function relative(ms: number): string {
  const minutes = Math.round(Math.abs(ms) / 60_000);
  const text =
    minutes >= 48 * 60
      ? `${Math.round(minutes / 1440)}d`
      : minutes >= 60
        ? `${Math.round(minutes / 6) / 10}h`
        : minutes >= 1
          ? `${minutes}m`
          : `${Math.round(Math.abs(ms) / 1000)}s`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

const inspectCommand = defineCommand(
  {
    path: "token inspect",
    summary: "Explain a token: who it is for, what it may do, and whether (and why not) a server accepts it.",
    details:
      "TOKEN defaults to $STREAMGATE_TOKEN; - reads it from stdin. With the server's key settings (the same flags,\n" +
      "environment and --config as serve) the signature, issuer and audience are checked too. Exits 1 when a\n" +
      "server with these settings would refuse the token.",
    positionals: ["TOKEN"],
    requiredPositionals: 0,
    options: keyFlags,
    examples: [
      "streamgate token inspect $STREAMGATE_TOKEN",
      "streamgate token inspect --auth-secret-file secret.txt $STREAMGATE_TOKEN",
    ],
  },
  async ({ values, positionals }, io) => {
    let token = positionals[0] ?? io.env.STREAMGATE_TOKEN ?? "";
    if (token === "-") token = (await readAll(io.stdin)).trim();
    if (token === "") throw new UsageError("missing TOKEN (or set $STREAMGATE_TOKEN)");
    const { decodeJwt, decodeProtectedHeader } = await import("jose");
    let header: ReturnType<typeof decodeProtectedHeader>;
    let payload: ReturnType<typeof decodeJwt>;
    try {
      header = decodeProtectedHeader(token);
      payload = decodeJwt(token);
    } catch {
      throw new CliError("not a JWT: expected three base64url parts, header.payload.signature");
    }
    const options = keySettings(values, io.env);
    const now = Date.now();
    const time = (seconds: unknown) =>
      typeof seconds === "number"
        ? `${new Date(seconds * 1000).toISOString()} (${relative(seconds * 1000 - now)})`
        : undefined;
    const audience = Array.isArray(payload.aud) ? payload.aud.join(", ") : payload.aud;
    io.stdout.write(
      formatFields([
        ["subject", payload.sub],
        ["issuer", payload.iss],
        ["audience", audience],
        ["issued", time(payload.iat)],
        ["not before", time(payload.nbf)],
        ["expires", time(payload.exp) ?? "never (a server refuses tokens without exp)"],
        ["algorithm", `${header.alg ?? "?"}${header.kid === undefined ? "" : ` (kid ${header.kid})`}`],
      ]),
    );
    const { grantsFromClaim, createJwtVerifier } = await import("../auth/index.js");
    const claim = payload.streamgate as Record<string, unknown> | undefined;
    const grantLines: string[] = [];
    for (const permission of permissions) {
      const list = claim?.[permission];
      for (const pattern of typeof list === "string" ? [list] : Array.isArray(list) ? list : []) {
        grantLines.push(`  ${permission.padEnd(10)}${String(pattern).padEnd(28)}${describePattern(String(pattern))}`);
      }
    }
    io.stdout.write(
      grantLines.length === 0 ? "grants:     none (the token may do nothing)\n" : `grants:\n${grantLines.join("\n")}\n`,
    );
    if (claim?.admin !== undefined && grantsFromClaim(claim).globalAdmin) {
      io.stdout.write("            admin on everything also opens the dashboard and /metrics\n");
    }

    const secret = readSecret(options);
    const verifier = createJwtVerifier({
      secret,
      jwksUrl: options.authJwksUrl,
      issuer: options.authIssuer,
      audiences: (options.authAudience ?? "")
        .split(",")
        .map((value) => value.trim())
        .filter((value) => value !== ""),
      cache: { maxEntries: 0 },
    });
    const keyed = secret !== null || options.authJwksUrl !== null;
    try {
      await verifier.verify(token);
      io.stdout.write("verdict:    accepted by a server with these key settings\n");
      return 0;
    } catch (error) {
      const refusal = error instanceof StreamgateError ? error : undefined;
      const reason = refusal?.reason ?? "TOKEN_MALFORMED";
      // Without a key only the signature cannot be judged: the claims checks above it still ran.
      if (!keyed && ["TOKEN_ALGORITHM_REJECTED", "TOKEN_UNKNOWN_KEY"].includes(reason)) {
        const claimsProblem = checkClaimsOnly(payload, now, options);
        if (claimsProblem === undefined) {
          io.stdout.write(
            "verdict:    signature not checked (give the server's --auth-secret-file, --auth-jwks-url or --config); the claims are valid\n",
          );
          return 0;
        }
        io.stdout.write(`verdict:    refused: ${claimsProblem}\n`);
        return 1;
      }
      io.stdout.write(`verdict:    refused: ${reason}: ${refusal?.message ?? String(error)}\n`);
      return 1;
    }
  },
);

/** The claims problem a server would report, checked without the key: iss, aud, exp, nbf. */
function checkClaimsOnly(
  payload: { exp?: number; nbf?: number; iss?: string; aud?: string | string[] },
  now: number,
  options: ServerOptions,
): string | undefined {
  const tolerance = 30_000;
  if (options.authIssuer !== null && payload.iss !== options.authIssuer) {
    return `TOKEN_WRONG_ISSUER: token issuer (iss) is not the expected "${options.authIssuer}"`;
  }
  const audiences = (options.authAudience ?? "")
    .split(",")
    .map((value) => value.trim())
    .filter(Boolean);
  const tokenAudiences = Array.isArray(payload.aud) ? payload.aud : payload.aud === undefined ? [] : [payload.aud];
  if (audiences.length > 0 && !tokenAudiences.some((value) => audiences.includes(value))) {
    return `TOKEN_WRONG_AUDIENCE: token audience (aud) does not include ${audiences.map((value) => `"${value}"`).join(" or ")}`;
  }
  if (typeof payload.exp !== "number") return "TOKEN_CLAIMS_INVALID: token has no valid exp claim; tokens must expire";
  if (payload.exp * 1000 + tolerance < now) {
    return "TOKEN_EXPIRED: token has expired (exp is in the past); get a new token";
  }
  if (typeof payload.nbf === "number" && payload.nbf * 1000 - tolerance > now) {
    return "TOKEN_NOT_YET_VALID: token is not valid yet (nbf is in the future)";
  }
  return undefined;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = "";
  for await (const chunk of stream) text += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
  return text;
}

/** `streamgate token …`. */
export const tokenGroup: CommandGroup = {
  name: "token",
  summary: "Mint and explain bearer tokens (JWT) for a server with auth on.",
  commands: { create: createCommand, inspect: inspectCommand },
};
