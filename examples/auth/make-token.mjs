// Prints an HS256 JWT for streamgate (no dependencies): node examples/auth/make-token.mjs SUBJECT [GRANTS_JSON]
// The secret comes from STREAMGATE_AUTH_SECRET; the token is valid for one hour. GRANTS_JSON is the
// `streamgate` claim, default {"admin":["*"]}. In production, tokens come from your identity provider.
import { createHmac } from "node:crypto";

const secret = process.env.STREAMGATE_AUTH_SECRET;
if (!secret) throw new Error("set STREAMGATE_AUTH_SECRET");
const [subject = "demo", grants = '{"admin":["*"]}'] = process.argv.slice(2);
const now = Math.floor(Date.now() / 1000);
const base64url = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
const unsigned = `${base64url({ alg: "HS256", typ: "JWT" })}.${base64url({ sub: subject, iat: now, exp: now + 3600, streamgate: JSON.parse(grants) })}`;
console.log(`${unsigned}.${createHmac("sha256", secret).update(unsigned).digest("base64url")}`);
