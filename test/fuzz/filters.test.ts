// Fuzz: Pub/Sub filter expressions, in the parser directly and through CreateSubscription and the long poll.
import { Agent } from "node:http";
import { after, before, describe, test } from "node:test";
import { compileFilter } from "../../src/broker/filter.js";
import { Code, StreamgateError } from "../../src/errors/index.js";
import { httpAnswerProblem, httpCall } from "./fuzz-clients.js";
import { describeInput, FuzzRecorder, fuzzCount, mutateString, percentEncode, type Rng, runPool } from "./fuzz-kit.js";
import { type FuzzServer, startFuzzServer } from "./fuzz-server.js";

const VALID_FILTERS = [
  'attributes.kind = "created"',
  "attributes:region",
  "NOT attributes:region",
  '-attributes.a != "b"',
  'hasPrefix(attributes.name, "pre")',
  '(attributes.a = "1" OR attributes.b = "2") AND attributes:c',
  "attributes.\"weird key\" = 'v\\n\\x41\\u00e9'",
  'attributes.a = "\\U0001F600\\101"',
  'attributes.x-y = "z" AND NOT hasPrefix(attributes.x-y, "q")',
  "((attributes:a))",
  "",
];

const TOKENS = [
  "AND",
  "OR",
  "NOT",
  "(",
  ")",
  "attributes",
  ".",
  ":",
  "=",
  "!=",
  "hasPrefix",
  ",",
  '"',
  "'",
  "\\",
  "-",
  " ",
  "\\x",
  "\\u",
  "\\U",
];

/** A mutated filter: string edits, token splices, or pathological nesting and repetition. */
function filterInput(rng: Rng): string {
  const base = rng.pick(VALID_FILTERS);
  switch (rng.int(6)) {
    case 0:
    case 1:
      return mutateString(rng, base);
    case 2: {
      let text = base;
      for (let n = rng.range(1, 4); n > 0; n--) {
        const at = rng.int(text.length + 1);
        text = text.slice(0, at) + rng.pick(TOKENS) + text.slice(at);
      }
      return text;
    }
    case 3: {
      const depth = rng.range(1, 140);
      return `${"(".repeat(depth)}${base}${")".repeat(rng.chance(0.5) ? depth : rng.int(depth))}`;
    }
    case 4:
      return Array.from({ length: rng.range(2, 60) }, () =>
        rng.pick(["NOT ", "-", "attributes:a", " AND ", " OR "]),
      ).join("");
    default:
      return Array.from({ length: rng.range(1, 40) }, () => rng.pick(TOKENS)).join(rng.pick(["", " "]));
  }
}

const ATTRIBUTE_SETS: Record<string, string>[] = [
  {},
  { kind: "created", region: "eu" },
  { a: "1", b: "2", c: "" },
  { name: "prefix", "weird key": "v\nAé", "x-y": "z" },
];

describe("fuzz filters", () => {
  test("fuzz - filter parser: every input compiles or throws INVALID_ARGUMENT, quickly", () => {
    const recorder = new FuzzRecorder("filters (parser)");
    const count = fuzzCount(1.5);
    for (let index = 0; index < count; index++) {
      const input = filterInput(recorder.input(index));
      const started = performance.now();
      try {
        const predicate = compileFilter(input);
        for (const attributes of ATTRIBUTE_SETS) predicate(attributes);
        recorder.outcome("compiled");
      } catch (error) {
        if (error instanceof StreamgateError && error.code === Code.INVALID_ARGUMENT)
          recorder.outcome("INVALID_ARGUMENT");
        else {
          recorder.outcome("other error");
          recorder.fail(index, `threw ${String(error)} (not a StreamgateError INVALID_ARGUMENT)`, describeInput(input));
        }
      }
      const elapsed = performance.now() - started;
      // A filter is at most 256 bytes and parses in microseconds: a second or more is runaway (super-linear)
      // behaviour. The bound is far above GC pauses on a loaded machine; it is not a performance target.
      if (elapsed > 2_000) recorder.fail(index, `took ${elapsed.toFixed(0)} ms`, describeInput(input));
    }
    recorder.finish();
  });

  describe("through the server", () => {
    let fuzz: FuzzServer;
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    before(async () => {
      fuzz = await startFuzzServer();
    });
    after(async () => {
      agent.destroy();
      await fuzz?.finish();
    });

    test("fuzz - filters via CreateSubscription and the long poll get 200 or a JSON 400", {
      timeout: 60_000,
    }, async () => {
      const recorder = new FuzzRecorder("filters (server)");
      const count = fuzzCount(0.5);
      await runPool(count, 8, async (index) => {
        const rng = recorder.input(index);
        const filter = filterInput(rng);
        const viaSubscription = rng.chance(0.5);
        const path = viaSubscription
          ? `/v1/projects/${fuzz.project}/subscriptions/f-${index}`
          : `/v1/${fuzz.topic}/events?from=earliest&wait=0&filter=${percentEncode(filter)}`;
        const body = viaSubscription ? Buffer.from(JSON.stringify({ topic: fuzz.topic, filter })) : null;
        const headers: Record<string, string> = body === null ? {} : { "content-type": "application/json" };
        try {
          const answer = await httpCall(
            agent,
            fuzz.server.url,
            viaSubscription ? "PUT" : "GET",
            path,
            headers,
            body,
            10_000,
          );
          recorder.outcome(`${viaSubscription ? "create" : "poll"} ${answer.status}`);
          const problem = httpAnswerProblem(answer);
          if (problem !== null) recorder.fail(index, problem, describeInput(filter));
        } catch (error) {
          recorder.outcome("no answer");
          recorder.fail(index, String(error), describeInput(filter));
        }
      });
      await fuzz.assertAlive("filter fuzzing");
      recorder.finish();
    });
  });
});
