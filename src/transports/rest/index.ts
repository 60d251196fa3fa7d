// Public surface of the REST transport.
export { createRestRoutes, type RestHandlerOptions } from "./rest-handler.js";
