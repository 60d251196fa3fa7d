// Fuzz: raw HTTP/1.1 request lines, headers, framing and query parameters over TCP against every HTTP route.
import { after, before, describe, test } from "node:test";
import { httpAnswerProblem, rawHttpExchange } from "./fuzz-clients.js";
import {
  describeInput,
  FuzzRecorder,
  fuzzCount,
  mutateBytesMany,
  mutateString,
  NASTY_STRINGS,
  percentEncode,
  type Rng,
  runPool,
} from "./fuzz-kit.js";
import { type FuzzServer, startFuzzServer } from "./fuzz-server.js";

interface RequestParts {
  method: string;
  target: string;
  version: string;
  headers: [string, string][];
  body: string;
}

/** Well-formed requests to every kind of HTTP route; the generators start from these. */
function seedRequests(fuzz: FuzzServer): RequestParts[] {
  const topic = `/v1/${fuzz.topic}`;
  const subscription = `/v1/${fuzz.subscription}`;
  const json = (method: string, target: string, body: unknown): RequestParts => ({
    method,
    target,
    version: "HTTP/1.1",
    headers: [
      ["host", "localhost"],
      ["content-type", "application/json"],
      ["content-length", String(Buffer.byteLength(JSON.stringify(body)))],
    ],
    body: JSON.stringify(body),
  });
  const get = (target: string, extra: [string, string][] = []): RequestParts => ({
    method: "GET",
    target,
    version: "HTTP/1.1",
    headers: [["host", "localhost"], ...extra],
    body: "",
  });
  return [
    get("/healthz"),
    get("/readyz"),
    get("/metrics"),
    get("/.well-known/jwks.json"),
    get("/"),
    get("/app.js"),
    get("/v1/dashboard/overview"),
    get(`/v1/projects/${fuzz.project}/topics?pageSize=2&pageToken=abc`),
    get(topic),
    get(`${topic}/subscriptions`),
    get(subscription),
    get(`${topic}/events?from=earliest`, [["accept", "text/event-stream"]]),
    get(`${topic}/events?from=2&filter=attributes%3An`, [["last-event-id", "1"]]),
    get(`${topic}/events?from=earliest&wait=0&max=2`),
    get(`${topic}/events?from=1970-01-01T00:00:00Z&wait=0&access_token=abc.def.ghi`),
    get("/v1/ws", [
      ["connection", "Upgrade"],
      ["upgrade", "websocket"],
      ["sec-websocket-version", "13"],
      ["sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="],
    ]),
    json("POST", `${topic}:publish`, { messages: [{ data: "aGVsbG8=", attributes: { k: "v" } }] }),
    json("POST", `${subscription}:pull`, { maxMessages: 1, returnImmediately: true }),
    json("PUT", `/v1/projects/${fuzz.project}/topics/http-fuzz`, { labels: { a: "b" } }),
    json("PATCH", topic, { topic: { labels: { x: "y" } }, updateMask: "labels" }),
    json("POST", `${subscription}:modifyAckDeadline`, { ackIds: ["x"], ackDeadlineSeconds: 10 }),
  ];
}

const BAD_METHODS = [
  "GETT",
  "get",
  "",
  "CONNECT",
  "PRI",
  "TRACE",
  "OPTIONS",
  "DELETE",
  "M".repeat(300),
  "GE T",
  "\u00e9",
];
const BAD_VERSIONS = ["HTTP/1.0", "HTTP/2.0", "HTTP/9.9", "", "HTTP/1.1 extra", "http/1.1", "HTTP/1.", "HTTP/01.1"];
const BAD_TARGETS = [
  "*",
  "http://localhost/healthz",
  "//healthz",
  "/../../../../etc/passwd",
  "/%2e%2e/%2e%2e/etc/passwd",
  "/v1/projects/%ZZ/topics/x",
  "/v1/projects/p/topics/%00",
  "/v1/projects/../topics/x:publish",
  "/v1/projects/p/topics/t/events?from=%FF&wait=1e999",
  "/v1/projects/p/topics/t/events?wait=-1&max=0",
  "/v1/projects/p/topics/t/events?max=99999999999999999999&wait=0",
  "/healthz?a=%",
  "/?" + "a=1&".repeat(2_000),
  "/" + "x".repeat(20_000),
];
const FRAMING_HEADERS: [string, string][][] = [
  [["content-length", "-1"]],
  [["content-length", "abc"]],
  [["content-length", "99999999999999999999"]],
  [["content-length", "1e3"]],
  [
    ["content-length", "5"],
    ["content-length", "6"],
  ],
  [
    ["content-length", "5"],
    ["transfer-encoding", "chunked"],
  ],
  [["transfer-encoding", "chunked, identity"]],
  [["transfer-encoding", "xchunked"]],
  [
    ["transfer-encoding", "chunked"],
    ["transfer-encoding", "identity"],
  ],
  [["transfer-encoding", " chunked"]],
  [["content-length", "1000000"]],
  [["expect", "100-continue"]],
  [["connection", "keep-alive, Upgrade"]],
  [["upgrade", "h2c"]],
  [["accept", "text/event-stream"]],
  [["last-event-id", "-5"]],
  [["last-event-id", "18446744073709551616"]],
  [["content-type", "application/grpc"]],
  [["content-type", "application/grpc-web+proto"]],
  [["content-type", "application/json; charset=utf-16"]],
  [["authorization", "Bearer \u0000"]],
  [["cookie", "streamgate_token=" + "a".repeat(5_000)]],
  [["x-long", "v".repeat(70_000)]],
];
const CHUNKED_BODIES = [
  "5\r\nhello\r\n0\r\n\r\n",
  "zz\r\nhello\r\n0\r\n\r\n",
  "ffffffffffffffff\r\nx\r\n",
  "5;ext=1\r\nhello\r\n",
  "0\r\n\r\nGET /healthz HTTP/1.1\r\nhost: x\r\n\r\n",
];

/** Applies 1..3 structural mutations to a request, then serializes it (sometimes with byte noise). */
function fuzzedRequest(rng: Rng, seed: RequestParts): Buffer {
  const parts: RequestParts = { ...seed, headers: [...seed.headers] };
  for (let n = rng.range(1, 3); n > 0; n--) {
    switch (rng.int(12)) {
      case 0:
        parts.method = rng.pick(BAD_METHODS);
        break;
      case 1:
        parts.version = rng.pick(BAD_VERSIONS);
        break;
      case 2:
        parts.target = rng.pick(BAD_TARGETS);
        break;
      case 3:
        parts.target = mutateString(rng, parts.target);
        break;
      case 4:
        parts.headers.push(...rng.pick(FRAMING_HEADERS));
        break;
      case 5:
        parts.headers = parts.headers.filter(() => rng.chance(0.5));
        break;
      case 6: {
        const name = rng.pick([
          "x-a",
          "",
          " x",
          "x y",
          "x\u0000",
          "x:y",
          "\u00e9",
          "content-length",
          "host",
          "x".repeat(9_000),
        ]);
        parts.headers.push([name, rng.pick(NASTY_STRINGS)]);
        break;
      }
      case 7:
        for (let i = rng.range(100, 3_000); i > 0; i--) parts.headers.push([`x-h${i}`, "v"]);
        break;
      case 8:
        parts.headers.push(["transfer-encoding", "chunked"]);
        parts.body = rng.pick(CHUNKED_BODIES);
        break;
      case 9:
        parts.body = mutateString(rng, parts.body);
        break;
      case 10: {
        const [path, query = ""] = parts.target.split("?");
        const param = rng.pick([
          "from",
          "wait",
          "max",
          "filter",
          "lastEventId",
          "access_token",
          "pageSize",
          "pageToken",
        ]);
        parts.target = `${path}?${query}&${param}=${percentEncode(rng.pick(NASTY_STRINGS))}`;
        break;
      }
      default:
        parts.headers.push(["x-folded", "a\r\n continued"]);
        break;
    }
  }
  const eol = rng.chance(0.05) ? "\n" : "\r\n";
  const head = `${parts.method} ${parts.target} ${parts.version}`.replace(/ $/, "");
  const text = `${head}${eol}${parts.headers.map(([k, v]) => `${k}: ${v}`).join(eol)}${eol}${eol}${parts.body}`;
  const bytes = Buffer.from(text);
  return rng.chance(0.25) ? mutateBytesMany(rng, bytes) : bytes;
}

describe("fuzz HTTP requests", () => {
  let fuzz: FuzzServer;
  before(async () => {
    fuzz = await startFuzzServer();
  });
  after(async () => {
    await fuzz?.finish();
  });

  test("fuzz - raw HTTP/1.1 requests get an answer (never 500, errors as JSON) or a close, never a hang", {
    timeout: 90_000,
  }, async () => {
    const recorder = new FuzzRecorder("http requests");
    const seeds = seedRequests(fuzz);
    const count = fuzzCount();
    const batch = 250;
    for (let start = 0; start < count; start += batch) {
      await runPool(Math.min(batch, count - start), 16, async (offset) => {
        const index = start + offset;
        const rng = recorder.input(index);
        const input = fuzzedRequest(rng, rng.pick(seeds));
        try {
          const result = await rawHttpExchange(fuzz.server.port, input, 300, 10_000);
          if (result.kind === "closed") {
            recorder.outcome(result.received.length === 0 ? "closed" : "closed mid-answer");
            return;
          }
          recorder.outcome(`${result.status}${result.streaming ? " stream" : ""}`);
          const problem = httpAnswerProblem(result);
          if (problem !== null) recorder.fail(index, problem, describeInput(input));
          if (result.status === 200 && result.body.includes("root:x:0:0"))
            recorder.fail(index, "served a file outside web/", describeInput(input));
        } catch (error) {
          recorder.outcome("hang");
          recorder.fail(index, String(error), describeInput(input));
        }
      });
      await fuzz.assertAlive(`HTTP inputs ${start}..${start + batch - 1}`);
    }
    recorder.finish();
  });
});
