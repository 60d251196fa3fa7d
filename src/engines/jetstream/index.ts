// Public surface of the JetStream (NATS) engine.
export { createJetStreamEngine, type JetStreamEngine } from "./jetstream-engine.js";
export {
  JETSTREAM_ENGINE_DEFAULTS,
  type JetStreamEngineOptions,
  type ResolvedJetStreamEngineOptions,
  resolveJetStreamEngineOptions,
} from "./jetstream-engine-options.js";
