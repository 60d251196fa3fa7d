// Fuzz: gRPC requests over raw HTTP/2 — corrupted length prefixes, flags, truncation, garbage protobuf, bad headers.
import { after, before, describe, test } from "node:test";
import { create, type DescMessage, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import {
  AcknowledgeRequestSchema,
  CreateSnapshotRequestSchema,
  GetTopicRequestSchema,
  ModifyAckDeadlineRequestSchema,
  PublishRequestSchema,
  PullRequestSchema,
  SeekRequestSchema,
  StreamingPullRequestSchema,
  SubscriptionSchema,
  TopicSchema,
} from "../../src/gen/google/pubsub/v1/pubsub_pb.js";
import {
  ConnectRequestSchema,
  PublishRequestSchema as EventsPublishRequestSchema,
  SubscribeRequestSchema,
} from "../../src/gen/streamgate/v1/events_pb.js";
import { grpcFrame } from "../harness/raw-grpc.js";
import { type H2Result, Http2Pool, h2Call } from "./fuzz-clients.js";
import { describeInput, FuzzRecorder, fuzzCount, mutateBytesMany, type Rng, runPool } from "./fuzz-kit.js";
import { type FuzzServer, startFuzzServer } from "./fuzz-server.js";

interface CallSeed {
  path: string;
  payload: Uint8Array;
}

function message<Desc extends DescMessage>(schema: Desc, init: MessageInitShape<Desc>): Uint8Array {
  return toBinary(schema, create(schema, init));
}

/** Valid requests to Publisher, Subscriber and Events methods; the generators corrupt them. */
function seedCalls(fuzz: FuzzServer): CallSeed[] {
  const { topic, subscription, project } = fuzz;
  const data = new TextEncoder().encode("hello");
  const P = "/google.pubsub.v1.Publisher/";
  const S = "/google.pubsub.v1.Subscriber/";
  const E = "/streamgate.v1.Events/";
  return [
    {
      path: `${P}Publish`,
      payload: message(PublishRequestSchema, { topic, messages: [{ data, attributes: { k: "v" } }] }),
    },
    { path: `${P}GetTopic`, payload: message(GetTopicRequestSchema, { topic }) },
    {
      path: `${P}CreateTopic`,
      payload: message(TopicSchema, { name: `projects/${project}/topics/grpc-fuzz`, labels: { a: "b" } }),
    },
    {
      path: `${P}ListTopics`,
      payload: new TextEncoder().encode(`\n${String.fromCharCode(`projects/${project}`.length)}projects/${project}`),
    },
    {
      path: `${S}CreateSubscription`,
      payload: message(SubscriptionSchema, {
        name: `projects/${project}/subscriptions/grpc-fuzz`,
        topic,
        ackDeadlineSeconds: 20,
        filter: "attributes:k",
      }),
    },
    {
      path: `${S}Pull`,
      payload: message(PullRequestSchema, { subscription, maxMessages: 2, returnImmediately: true }),
    },
    {
      path: `${S}Acknowledge`,
      payload: message(AcknowledgeRequestSchema, { subscription, ackIds: ["not-an-ack-id"] }),
    },
    {
      path: `${S}ModifyAckDeadline`,
      payload: message(ModifyAckDeadlineRequestSchema, { subscription, ackIds: ["x"], ackDeadlineSeconds: 30 }),
    },
    {
      path: `${S}Seek`,
      payload: message(SeekRequestSchema, { subscription, target: { case: "time", value: { seconds: 0n } } }),
    },
    {
      path: `${S}CreateSnapshot`,
      payload: message(CreateSnapshotRequestSchema, { name: `projects/${project}/snapshots/s1`, subscription }),
    },
    {
      path: `${S}StreamingPull`,
      payload: message(StreamingPullRequestSchema, {
        subscription,
        streamAckDeadlineSeconds: 10,
        maxOutstandingMessages: 5n,
      }),
    },
    {
      path: `${E}Subscribe`,
      payload: message(SubscribeRequestSchema, {
        topic,
        position: { kind: { case: "earliest", value: true } },
        filter: "attributes:n",
      }),
    },
    { path: `${E}PublishStream`, payload: message(EventsPublishRequestSchema, { topic, messages: [{ data }] }) },
    {
      path: `${E}Connect`,
      payload: message(ConnectRequestSchema, {
        kind: { case: "subscribe", value: { id: "a", topic, position: { kind: { case: "afterOffset", value: 1n } } } },
      }),
    },
  ];
}

const CONTENT_TYPES = [
  "application/grpc",
  "application/grpc+proto",
  "application/grpc+json",
  "application/grpc; charset=utf-8",
  "application/grpcx",
  "application/grpc-web",
  "application/grpc-web-text",
  "application/grpc-web+proto",
  "application/connect+proto",
  "application/proto",
  "application/json",
  "text/plain",
  "",
];
const TIMEOUTS = [
  "1",
  "99999999999H",
  "-1S",
  "1x",
  "abc",
  "1n",
  "0S",
  "100000000m",
  "1.5S",
  " 1S",
  "1S1S",
  "9".repeat(40) + "S",
];
const PATHS = [
  "/google.pubsub.v1.Publisher/",
  "/google.pubsub.v1.Publisher/Nope",
  "/google.pubsub.v1.Publisher/Publish/extra",
  "/nope.Service/Method",
  "//",
  "/google.pubsub.v1.Publisher/publish",
  "/streamgate.v1.Events/Subscribe?x=1",
  "/google.pubsub.v1.Subscriber/StreamingPull%00",
];

/** Frame-level corruption of a valid payload: prefix lies, flags, truncation, extra frames, body noise. */
function fuzzedBody(rng: Rng, payload: Uint8Array, headers: Record<string, string>): Buffer {
  const bytes = Buffer.from(payload);
  switch (rng.int(11)) {
    case 0:
      return grpcFrame(mutateBytesMany(rng, bytes));
    case 1:
      return grpcFrame(bytes, { declaredLength: bytes.length + rng.range(1, 100) });
    case 2:
      return grpcFrame(bytes, { declaredLength: Math.max(0, bytes.length - rng.range(1, 8)) });
    case 3:
      return grpcFrame(bytes, { declaredLength: rng.pick([0xffff_ffff, 0x7fff_ffff, 0x100_0000, 65 * 1024]) });
    case 4:
      return grpcFrame(bytes, { compressed: true });
    case 5: {
      headers["grpc-encoding"] = rng.pick(["gzip", "deflate", "br", "identity", "snappy", ""]);
      return grpcFrame(rng.chance(0.5) ? bytes : rng.bytes(rng.range(1, 64)), { compressed: rng.chance(0.8) });
    }
    case 6: {
      const frame = grpcFrame(bytes);
      frame[0] = rng.range(2, 255);
      return frame;
    }
    case 7:
      return grpcFrame(bytes).subarray(0, rng.int(5 + bytes.length));
    case 8:
      return Buffer.concat(
        Array.from({ length: rng.range(2, 20) }, () =>
          grpcFrame(rng.chance(0.5) ? bytes : mutateBytesMany(rng, bytes)),
        ),
      );
    case 9:
      return grpcFrame(rng.bytes(rng.range(0, rng.chance(0.1) ? 70_000 : 200)));
    default:
      return mutateBytesMany(rng, grpcFrame(bytes));
  }
}

/** Header-level corruption: content-type variants, grpc-timeout garbage, te missing, odd paths and metadata. */
function fuzzedHeaders(rng: Rng, path: string): Record<string, string> {
  const headers: Record<string, string> = {
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    te: "trailers",
  };
  for (let n = rng.range(0, 3); n > 0; n--) {
    switch (rng.int(8)) {
      case 0:
        headers["content-type"] = rng.pick(CONTENT_TYPES);
        break;
      case 1:
        headers["grpc-timeout"] = rng.pick(TIMEOUTS);
        break;
      case 2:
        delete headers.te;
        break;
      case 3:
        headers.te = rng.pick(["gzip", "", "trailers, deflate"]);
        break;
      case 4:
        headers[":path"] = rng.pick(PATHS);
        break;
      case 5:
        headers[":method"] = rng.pick(["GET", "PUT", "HEAD", "OPTIONS"]);
        break;
      case 6:
        headers[
          rng.pick([
            "x-bin",
            "grpc-trace-bin",
            "traceparent",
            "authorization",
            "grpc-accept-encoding",
            "grpc-message-type",
          ])
        ] = rng.pick(["!!!", "AAAA", "00-zz-zz-01", "Bearer x.y.z", "gzip;q=oops", "a".repeat(20_000)]);
        break;
      default:
        headers["grpc-status"] = rng.pick(["0", "13", "x"]);
        break;
    }
  }
  return headers;
}

const BAD_STATUSES = new Set([2, 13]);

function describeCall(headers: Record<string, string>, body: Buffer): string {
  const shownHeaders = Object.fromEntries(
    Object.entries(headers).map(([k, v]) => [k, v.length > 100 ? `${v.slice(0, 100)}…` : v]),
  );
  return `${JSON.stringify(shownHeaders)} body ${describeInput(body, 200)}`;
}

/** The oracle for one answer; returns the problem or null. */
function grpcProblem(result: H2Result): string | null {
  if (result.open) return null;
  if (result.httpStatus === 0) return null; // reset without an answer: recorded as its own outcome
  const status = result.trailers["grpc-status"] ?? result.headers["grpc-status"];
  const contentType = result.headers["content-type"] ?? "";
  if (status === undefined) {
    if (contentType.startsWith("application/grpc") && !contentType.startsWith("application/grpc-web"))
      return `gRPC answer without grpc-status (HTTP ${result.httpStatus})`;
    if (result.httpStatus >= 500 && result.httpStatus !== 501 && result.httpStatus !== 503)
      return `HTTP ${result.httpStatus}: ${result.body.toString().slice(0, 200)}`;
    return null;
  }
  const code = Number(status);
  if (!Number.isInteger(code) || code < 0 || code > 16) return `grpc-status ${status}`;
  if (BAD_STATUSES.has(code)) {
    const message = decodeURIComponent(result.trailers["grpc-message"] ?? result.headers["grpc-message"] ?? "");
    return `grpc-status ${code} (${code === 2 ? "UNKNOWN" : "INTERNAL"}): ${message}`;
  }
  if (code !== 0 && (result.trailers["grpc-message"] ?? result.headers["grpc-message"] ?? "") === "")
    return `grpc-status ${code} without a grpc-message`;
  return null;
}

describe("fuzz gRPC frames", () => {
  let fuzz: FuzzServer;
  let pool: Http2Pool;
  before(async () => {
    // Short heartbeats: a live stream that accepted its input shows itself within the call's bound.
    fuzz = await startFuzzServer({ heartbeatMs: 500 });
    pool = new Http2Pool(fuzz.server.url, 4);
  });
  after(async () => {
    pool?.close();
    await fuzz?.finish();
  });

  test("fuzz - raw gRPC requests end with a clear status (never UNKNOWN/INTERNAL), never hang", {
    timeout: 90_000,
  }, async () => {
    const recorder = new FuzzRecorder("grpc frames");
    const seeds = seedCalls(fuzz);
    const count = fuzzCount();
    const batch = 250;
    for (let start = 0; start < count; start += batch) {
      await runPool(Math.min(batch, count - start), 16, async (offset) => {
        const index = start + offset;
        const rng = recorder.input(index);
        const seed = rng.pick(seeds);
        let headers = fuzzedHeaders(rng, seed.path);
        const body = rng.chance(0.85) ? fuzzedBody(rng, seed.payload, headers) : grpcFrame(seed.payload);
        let shown = "";
        try {
          // Headers node's client refuses to send (a `te` other than "trailers"…) are replaced by valid ones:
          // the body's corruption is still sent, so every input reaches the server.
          const result = await h2Call(pool, headers, body, 10_000).catch((error: unknown) => {
            if (!String(error).includes("unsendable")) throw error;
            headers = { ":method": "POST", ":path": seed.path, "content-type": "application/grpc", te: "trailers" };
            return h2Call(pool, headers, body, 10_000);
          });
          shown = describeCall(headers, body);
          const status = result.trailers["grpc-status"] ?? result.headers["grpc-status"];
          recorder.outcome(
            result.open
              ? "stream open"
              : result.httpStatus === 0
                ? "reset"
                : status !== undefined
                  ? `grpc ${status}`
                  : `http ${result.httpStatus}`,
          );
          const problem = grpcProblem(result);
          if (problem !== null) recorder.fail(index, problem, shown);
        } catch (error) {
          recorder.outcome("hang");
          recorder.fail(index, String(error), describeCall(headers, body));
        }
      });
      await fuzz.assertAlive(`gRPC inputs ${start}..${start + batch - 1}`);
    }
    recorder.finish();
  });
});
