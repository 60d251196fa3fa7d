// Unit tests of the agent registry: power-of-two-choices picks, availability, ejection and its backoff.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AgentRegistry } from "./agent-registry.js";
import { AgentSession } from "./agent-session.js";

function session(clientId: string, group = "g"): AgentSession {
  return new AgentSession({
    id: `${clientId}-session`,
    clientId,
    group,
    grantName: "grant",
    token: "token",
    agentVersion: "",
    standbyTarget: 8,
    maxStreams: 100,
    initialStandbys: 0,
    control: { openStreams: () => undefined },
  });
}

describe("agent registry", () => {
  it("agent registry - picks only available sessions of the group, null for an empty group", () => {
    const registry = new AgentRegistry();
    const a = session("a");
    const drained = session("d");
    drained.draining = true;
    const other = session("o", "other");
    for (const item of [a, drained, other]) registry.add(item);
    for (let index = 0; index < 20; index++) assert.equal(registry.pick("g"), a);
    assert.equal(registry.pick("missing"), null);
    a.healthy = false;
    assert.equal(registry.pick("g"), null);
    registry.remove(other);
    assert.deepEqual(registry.groupNames(), ["g"]);
  });

  it("agent registry - power of two choices favours the session with fewer outstanding requests", () => {
    const registry = new AgentRegistry();
    const busy = session("busy");
    const idle = session("idle");
    registry.add(busy);
    registry.add(idle);
    busy.inFlight = 10;
    const picks = { busy: 0, idle: 0 };
    for (let index = 0; index < 200; index++) picks[registry.pick("g")!.clientId as "busy" | "idle"]++;
    // With two candidates both are always compared: the less loaded one wins every time.
    assert.deepEqual(picks, { busy: 0, idle: 200 });
  });

  it("agent registry - five UNAVAILABLE in a row eject an agent for a while, doubling; a success resets the count", () => {
    const registry = new AgentRegistry({ afterFailures: 5, baseMs: 50, maxMs: 150 });
    const bad = session("bad");
    const good = session("good");
    registry.add(bad);
    registry.add(good);
    for (let index = 0; index < 4; index++) registry.recordResult(bad, true);
    registry.recordResult(bad, false);
    for (let index = 0; index < 4; index++) registry.recordResult(bad, true);
    assert.equal(registry.isEjected(bad), false, "a success in between must reset the count");
    registry.recordResult(bad, true);
    assert.equal(registry.isEjected(bad), true);
    for (let index = 0; index < 20; index++) assert.equal(registry.pick("g"), good);
    // With every agent ejected, the ejected ones still serve rather than nobody.
    good.healthy = false;
    assert.equal(registry.pick("g"), bad);
  });

  it("agent registry - an ejection outlives a reconnect of the same client id", () => {
    const registry = new AgentRegistry({ afterFailures: 1, baseMs: 60_000, maxMs: 60_000 });
    const first = session("flaky");
    registry.add(first);
    registry.recordResult(first, true);
    registry.remove(first);
    const again = session("flaky");
    registry.add(again);
    assert.equal(registry.isEjected(again), true);
  });
});
