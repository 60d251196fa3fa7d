// Public surface of the config component.
export { envNames, serverOptionsFromEnv } from "./env-options.js";
export {
  defaultServerOptions,
  EngineKind,
  GrpcPath,
  resolveServerOptions,
  type ServerOptions,
} from "./server-options.js";
