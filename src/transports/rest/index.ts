// Public surface of the REST transport.
export {
  type AnyRequest,
  type AnyResponse,
  rawErrorResponse,
  requestUrl,
  sendError,
  sendJson,
} from "./json-response.js";
export { createRestHandler, type RestHandlerOptions } from "./rest-handler.js";
