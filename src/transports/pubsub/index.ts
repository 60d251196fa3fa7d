// Public surface of the Pub/Sub API layer shared by the gRPC and REST transports.
export { createPublisherService } from "./publisher-service.js";
export { createSubscriberService } from "./subscriber-service.js";
export { defaultPubsubLimits, type PubsubLimits } from "./limits.js";
