// Public surface of the Pub/Sub API layer shared by the gRPC and REST transports.

export { createIamPolicyService } from "./iam-service.js";
export { defaultPubsubLimits, type PubsubLimits } from "./limits.js";
export { createPublisherService } from "./publisher-service.js";
export { createSchemaService, schemaToProto } from "./schema-service.js";
export { createSubscriberService } from "./subscriber-service.js";
