// Public surface of the live-stream hub: subscriptions on topic logs shared by every streaming transport.
export { encodeMessageJson, type MessageJson, messageToJson } from "./message-json.js";
export { OutputQueue, type OutputQueueLimits } from "./output-queue.js";
export { withResumeHint } from "./resume-hint.js";
export { createStreamHub, defaultStreamHubOptions, type StreamHubOptions } from "./stream-hub.js";
export { parseOffset, parseStreamPosition } from "./stream-position.js";
export type { FeedEvent, FeedSubscribeOptions, FeedSubscription, StreamHub } from "./types.js";
