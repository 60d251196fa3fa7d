// Public surface of the tunnel server: createTunnelServer and the shapes it reports.
export { TUNNEL_SERVICE_PREFIX } from "./agent-endpoint.js";
export type { EjectionOptions } from "./agent-registry.js";
export type { DirectForwarder } from "./proxy-request.js";
export { type AgentInfo, TUNNEL_AGENTS_PATH, TUNNEL_MATCH_PATH } from "./tunnel-admin.js";
export {
  createTunnelServer,
  type EntryAddress,
  type TunnelServer,
  type TunnelServerOptions,
  type TunnelStats,
} from "./tunnel-server.js";
