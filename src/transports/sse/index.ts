// Public surface of the SSE and long-poll transport for topic events.
export { createEventsRoute, type EventsHandlerOptions } from "./events-handler.js";
export { formatSseEvent } from "./sse-sink.js";
export { formatSseError, SSE_RETRY_MS } from "./sse-stream.js";
