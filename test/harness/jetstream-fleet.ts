// Several streamgate JetStream engines in one test process, sharing one namespace on one nats-server: the instances of
// a scaled-out deployment, opened as a test needs them and torn down together.
import { randomBytes } from "node:crypto";
import {
  createJetStreamEngine,
  type JetStreamEngine,
  type JetStreamEngineOptions,
} from "../../src/engines/jetstream/index.js";

export interface JetStreamFleet {
  /** The namespace every instance shares (a random suffix after the prefix). */
  readonly namespace: string;
  /** Opens one more instance; `options` add to (or override) the fleet's. */
  open(options?: Partial<JetStreamEngineOptions>): Promise<JetStreamEngine>;
  /** Deletes the namespace's streams and buckets through the first instance (best effort), then closes every one. */
  close(): Promise<void>;
}

/** @param natsUrl read when an instance opens (the test file's nats-server may start after the fleet is declared). */
export function jetStreamFleet(
  natsUrl: () => string,
  prefix: string,
  options: Partial<JetStreamEngineOptions> = {},
): JetStreamFleet {
  const namespace = `${prefix}${randomBytes(3).toString("hex")}`;
  const engines: JetStreamEngine[] = [];
  return {
    namespace,
    async open(extra = {}) {
      const engine = await createJetStreamEngine({ ...options, ...extra, natsUrl: natsUrl(), namespace });
      engines.push(engine);
      return engine;
    },
    async close() {
      await engines[0]?.destroy().catch(() => undefined);
      for (const engine of engines) await engine.close();
    },
  };
}
