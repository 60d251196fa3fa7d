// Public surface of the REST transport.
export { createRestHandler, type RestHandlerOptions } from "./rest-handler.js";
