// Public surface of the tunnel agent: dial out to a streamgate server and serve its requests through local upstreams.
export { isRefusal } from "./agent-connection.js";
export {
  type AgentReconnectOptions,
  type AgentTlsOptions,
  backoffDelayMs,
  resolveTunnelAgentOptions,
  type TunnelAgentOptions,
} from "./agent-options.js";
export {
  AgentState,
  createTunnelAgent,
  type TunnelAgent,
  type TunnelAgentStatus,
} from "./tunnel-agent.js";
