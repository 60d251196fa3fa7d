// Public surface of the Events transport: streamgate.v1.Events on a Connect router (gRPC, gRPC-Web, Connect).
export { msToTimestamp, timestampToMs } from "./convert.js";
export { createEventsService, type EventsServiceOptions } from "./events-service.js";
export { OutputQueue, type OutputQueueLimits } from "./output-queue.js";
export { withResumeHint } from "./resume-hint.js";
