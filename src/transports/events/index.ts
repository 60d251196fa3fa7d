// Public surface of the Events transport: streamgate.v1.Events on a Connect router (gRPC, gRPC-Web, Connect).
export { msToTimestamp, timestampToMs } from "./convert.js";
export { createEventsService, type EventsServiceOptions } from "./events-service.js";
