// Public surface of the engines component: the Engine contract and a factory for each engine kind.
import { Code, StreamgateError } from "../errors/index.js";
import { createEmbeddedEngine } from "./embedded/index.js";
import type { Engine } from "./engine.js";
import { createJetStreamEngine } from "./jetstream/index.js";

export {
  createEmbeddedEngine,
  EMBEDDED_ENGINE_DEFAULTS,
  type EmbeddedEngine,
  type EmbeddedEngineOptions,
  resolveEmbeddedEngineOptions,
} from "./embedded/index.js";
export type {
  DeliveryOptions,
  DeliveryStream,
  Engine,
  SubscriptionInit,
  SubscriptionStats,
  TopicInit,
  TopicStats,
  Update,
} from "./engine.js";
export {
  chainEngine,
  ENGINE_METHODS,
  type EngineChain,
  type EngineInterception,
  type EngineInterceptor,
  type EngineMethod,
} from "./engine-chain.js";
export {
  createJetStreamEngine,
  JETSTREAM_ENGINE_DEFAULTS,
  type JetStreamEngine,
  type JetStreamEngineOptions,
  resolveJetStreamEngineOptions,
} from "./jetstream/index.js";

/** Which engine to open and its settings (a subset of the server options). */
export interface EngineSelection {
  /** "embedded" (SQLite in `dataDir`) or "jetstream" (NATS at `natsUrl`). */
  engine: "embedded" | "jetstream";
  dataDir: string;
  syncEveryCommit: boolean;
  natsUrl?: string;
  /** The largest accepted message: the jetstream engine refuses to start when nats-server's max_payload is lower. */
  maxMessageBytes?: number;
  /** Jetstream engine options (see {@link JetStreamEngineOptions}); unset ones take the engine's defaults. */
  jetstreamReplicas?: number;
  jetstreamNamespace?: string;
  jetstreamOrderingLeaseMs?: number;
  jetstreamDeliveryRecordTtlMs?: number;
  jetstreamConnectTimeoutMs?: number;
}

/**
 * Opens the selected engine.
 * @throws StreamgateError UNIMPLEMENTED for an engine this build does not include.
 */
export async function createEngine(selection: EngineSelection): Promise<Engine> {
  switch (selection.engine) {
    case "embedded":
      return createEmbeddedEngine({ dataDir: selection.dataDir, syncEveryCommit: selection.syncEveryCommit });
    case "jetstream":
      return createJetStreamEngine({
        natsUrl: selection.natsUrl ?? "",
        maxMessageBytes: selection.maxMessageBytes,
        replicas: selection.jetstreamReplicas,
        namespace: selection.jetstreamNamespace,
        orderingLeaseMs: selection.jetstreamOrderingLeaseMs,
        deliveryRecordTtlMs: selection.jetstreamDeliveryRecordTtlMs,
        connectTimeoutMs: selection.jetstreamConnectTimeoutMs,
      });
    default:
      throw new StreamgateError(
        Code.UNIMPLEMENTED,
        `engine ${JSON.stringify(selection.engine)} is not available in this build`,
        {
          reason: "ENGINE_UNAVAILABLE",
        },
      );
  }
}
