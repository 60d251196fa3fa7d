// Fuzz: Pub/Sub REST JSON bodies, mutated structurally (types, fields, nesting, unicode, sizes) on every body route.
import { Agent } from "node:http";
import { after, before, describe, test } from "node:test";
import { httpAnswerProblem, httpCall } from "./fuzz-clients.js";
import { describeInput, FuzzRecorder, fuzzCount, mutatedJsonText, runPool } from "./fuzz-kit.js";
import { type FuzzServer, startFuzzServer } from "./fuzz-server.js";

type Json = Parameters<typeof mutatedJsonText>[1];

describe("fuzz JSON bodies", () => {
  let fuzz: FuzzServer;
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  before(async () => {
    fuzz = await startFuzzServer();
  });
  after(async () => {
    agent.destroy();
    await fuzz?.finish();
  });

  test("fuzz - mutated REST bodies get 200 or a JSON 4xx error (never 500), and never hang", {
    timeout: 90_000,
  }, async () => {
    const recorder = new FuzzRecorder("json bodies");
    const { project, topic, subscription } = fuzz;
    const data = Buffer.from("hello").toString("base64");
    const seeds: { method: string; path: string; body: Json }[] = [
      {
        method: "POST",
        path: `/v1/${topic}:publish`,
        body: { messages: [{ data, attributes: { k: "v" }, orderingKey: "o" }] },
      },
      {
        method: "PUT",
        path: `/v1/projects/${project}/topics/json-fuzz`,
        body: {
          labels: { a: "b" },
          messageRetentionDuration: "600s",
          messageStoragePolicy: { allowedPersistenceRegions: ["x"] },
        },
      },
      { method: "PATCH", path: `/v1/${topic}`, body: { topic: { labels: { x: "y" } }, updateMask: "labels" } },
      {
        method: "PUT",
        path: `/v1/projects/${project}/subscriptions/json-fuzz`,
        body: {
          topic,
          ackDeadlineSeconds: 20,
          filter: "attributes:k",
          retryPolicy: { minimumBackoff: "1s", maximumBackoff: "10s" },
          deadLetterPolicy: { deadLetterTopic: topic, maxDeliveryAttempts: 5 },
          expirationPolicy: { ttl: "86400s" },
          pushConfig: {},
        },
      },
      {
        method: "PATCH",
        path: `/v1/${subscription}`,
        body: { subscription: { ackDeadlineSeconds: 30 }, updateMask: "ackDeadlineSeconds" },
      },
      { method: "POST", path: `/v1/${subscription}:pull`, body: { maxMessages: 1, returnImmediately: true } },
      { method: "POST", path: `/v1/${subscription}:acknowledge`, body: { ackIds: ["x", "y"] } },
      {
        method: "POST",
        path: `/v1/${subscription}:modifyAckDeadline`,
        body: { ackIds: ["x"], ackDeadlineSeconds: 10 },
      },
      {
        method: "POST",
        path: `/v1/${subscription}:modifyPushConfig`,
        body: { pushConfig: { pushEndpoint: "http://127.0.0.1:9/push", attributes: { "x-goog-version": "v1" } } },
      },
      { method: "POST", path: `/v1/${subscription}:seek`, body: { time: "2020-01-01T00:00:00Z" } },
      {
        method: "PUT",
        path: `/v1/projects/${project}/snapshots/json-fuzz`,
        body: { subscription, labels: { s: "t" } },
      },
    ];
    // A Pull without returnImmediately long-polls (up to 20 s) by design: a steady trickle of messages
    // answers it within a fraction of a second, so a wait is never mistaken for a hang.
    const trickle = setInterval(() => {
      const body = Buffer.from(JSON.stringify({ messages: [{ data }] }));
      httpCall(
        agent,
        fuzz.server.url,
        "POST",
        `/v1/${topic}:publish`,
        { "content-type": "application/json" },
        body,
        10_000,
      ).catch(() => undefined);
    }, 100);
    const count = fuzzCount();
    const batch = 250;
    for (let start = 0; start < count; start += batch) {
      await runPool(Math.min(batch, count - start), 8, async (offset) => {
        const index = start + offset;
        const rng = recorder.input(index);
        const seed = rng.pick(seeds);
        const body = mutatedJsonText(rng, seed.body);
        const contentType = rng.chance(0.9)
          ? "application/json"
          : rng.pick(["text/plain", "application/x-www-form-urlencoded", ""]);
        try {
          const answer = await httpCall(
            agent,
            fuzz.server.url,
            seed.method,
            seed.path,
            { "content-type": contentType },
            body,
            10_000,
          );
          recorder.outcome(`${answer.status}`);
          const problem = httpAnswerProblem(answer);
          if (problem !== null) recorder.fail(index, problem, `${seed.method} ${seed.path} ${describeInput(body)}`);
        } catch (error) {
          recorder.outcome("no answer");
          recorder.fail(index, String(error), `${seed.method} ${seed.path} ${describeInput(body)}`);
        }
      });
      await fuzz.assertAlive(`JSON bodies ${start}..${start + batch - 1}`);
    }
    clearInterval(trickle);
    recorder.finish();
  });
});
