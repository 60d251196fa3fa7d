// A minimal raw grpc-js client for google.pubsub.v1 (proto loaded from google-proto-files), for benchmarks.
import { join } from "node:path";
import { Client, type ClientDuplexStream, credentials, Metadata } from "@grpc/grpc-js";
import { loadSync, type MethodDefinition, type PackageDefinition } from "@grpc/proto-loader";

/** `google.pubsub.v1.PubsubMessage` as sent (the fields we use). */
export interface PubsubMessageInput {
  data: Buffer;
  attributes?: Record<string, string>;
  orderingKey?: string;
}

/** `google.pubsub.v1.PubsubMessage` as received. */
export interface PubsubMessageOutput {
  data: Buffer;
  messageId: string;
  attributes?: Record<string, string>;
}

/** `google.pubsub.v1.ReceivedMessage`. */
export interface ReceivedMessage {
  ackId: string;
  message: PubsubMessageOutput;
  deliveryAttempt?: number;
}

/** `google.pubsub.v1.StreamingPullRequest` (the fields we use). */
export interface StreamingPullRequest {
  subscription?: string;
  ackIds?: string[];
  streamAckDeadlineSeconds?: number;
  clientId?: string;
  maxOutstandingMessages?: number;
  maxOutstandingBytes?: number;
}

/** `google.pubsub.v1.StreamingPullResponse` (the fields we use). */
export interface StreamingPullResponse {
  receivedMessages?: ReceivedMessage[];
}

interface PublishRequest {
  topic: string;
  messages: PubsubMessageInput[];
}
interface PublishResponse {
  messageIds?: string[];
}
interface TopicRequest {
  name: string;
}
interface SubscriptionRequest {
  name: string;
  topic: string;
  ackDeadlineSeconds: number;
}
interface AcknowledgeRequest {
  subscription: string;
  ackIds: string[];
}
interface DeleteTopicRequest {
  topic: string;
}
interface DeleteSubscriptionRequest {
  subscription: string;
}

/** A method's path and codecs, typed for the messages we exchange. */
interface Method<Request, Response> {
  path: string;
  serialize: (value: Request) => Buffer;
  deserialize: (bytes: Buffer) => Response;
}

let packageDefinition: PackageDefinition | undefined;

/** Loads google/pubsub/v1/pubsub.proto once (camelCase fields, bytes as Buffer). */
function loadPubsubProto(repoRoot: string): PackageDefinition {
  packageDefinition ??= loadSync("google/pubsub/v1/pubsub.proto", {
    includeDirs: [join(repoRoot, "node_modules", "google-proto-files")],
    keepCase: false,
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
  });
  return packageDefinition;
}

function method<Request extends object, Response>(
  definition: PackageDefinition,
  service: string,
  name: string,
): Method<Request, Response> {
  const serviceDefinition = definition[`google.pubsub.v1.${service}`];
  if (serviceDefinition === undefined || "format" in serviceDefinition) {
    throw new Error(`google.pubsub.v1.${service} is not a service in the loaded proto`);
  }
  const found = (serviceDefinition as Record<string, MethodDefinition<object, object> | undefined>)[name];
  if (found === undefined) throw new Error(`google.pubsub.v1.${service}/${name} not found`);
  return {
    path: found.path,
    serialize: found.requestSerialize,
    deserialize: found.responseDeserialize as (bytes: Buffer) => Response,
  };
}

/**
 * Raw google.pubsub.v1 client over one grpc-js channel (h2c). Kept deliberately thin so the
 * client's own cost stays comparable to the @nats-io client's: no batching, leasing or retries
 * beyond what the caller does.
 */
export class PubsubGrpcClient {
  readonly #client: Client;
  readonly #publish: Method<PublishRequest, PublishResponse>;
  readonly #createTopic: Method<TopicRequest, object>;
  readonly #deleteTopic: Method<DeleteTopicRequest, object>;
  readonly #createSubscription: Method<SubscriptionRequest, object>;
  readonly #deleteSubscription: Method<DeleteSubscriptionRequest, object>;
  readonly #acknowledge: Method<AcknowledgeRequest, object>;
  readonly #streamingPull: Method<StreamingPullRequest, StreamingPullResponse>;

  /**
   * @param target `host:port` of the server.
   * @param repoRoot Repository root (for node_modules/google-proto-files).
   */
  constructor(target: string, repoRoot: string) {
    const definition = loadPubsubProto(repoRoot);
    this.#client = new Client(target, credentials.createInsecure(), {
      "grpc.max_receive_message_length": 20 * 1024 * 1024,
      "grpc.max_send_message_length": 20 * 1024 * 1024,
    });
    this.#publish = method(definition, "Publisher", "Publish");
    this.#createTopic = method(definition, "Publisher", "CreateTopic");
    this.#deleteTopic = method(definition, "Publisher", "DeleteTopic");
    this.#createSubscription = method(definition, "Subscriber", "CreateSubscription");
    this.#deleteSubscription = method(definition, "Subscriber", "DeleteSubscription");
    this.#acknowledge = method(definition, "Subscriber", "Acknowledge");
    this.#streamingPull = method(definition, "Subscriber", "StreamingPull");
  }

  #unary<Request, Response>(m: Method<Request, Response>, request: Request, deadlineMs = 30_000): Promise<Response> {
    return new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest(
        m.path,
        m.serialize,
        m.deserialize,
        request,
        new Metadata(),
        { deadline: Date.now() + deadlineMs },
        (error, response) => {
          if (error) reject(error);
          else if (response === undefined) reject(new Error(`${m.path}: empty response`));
          else resolve(response);
        },
      );
    });
  }

  /** Publisher.CreateTopic. */
  async createTopic(name: string): Promise<void> {
    await this.#unary(this.#createTopic, { name });
  }

  /** Publisher.DeleteTopic. */
  async deleteTopic(topic: string): Promise<void> {
    await this.#unary(this.#deleteTopic, { topic });
  }

  /** Subscriber.CreateSubscription. */
  async createSubscription(name: string, topic: string, ackDeadlineSeconds: number): Promise<void> {
    await this.#unary(this.#createSubscription, { name, topic, ackDeadlineSeconds });
  }

  /** Subscriber.DeleteSubscription. */
  async deleteSubscription(subscription: string): Promise<void> {
    await this.#unary(this.#deleteSubscription, { subscription });
  }

  /** Publisher.Publish; resolves to the message ids. */
  async publish(topic: string, messages: PubsubMessageInput[]): Promise<string[]> {
    const response = await this.#unary(this.#publish, { topic, messages });
    return response.messageIds ?? [];
  }

  /** Subscriber.Acknowledge (unary, as the official Node client sends acks). */
  async acknowledge(subscription: string, ackIds: string[]): Promise<void> {
    await this.#unary(this.#acknowledge, { subscription, ackIds });
  }

  /** Opens Subscriber.StreamingPull; the caller writes the first request. */
  streamingPull(): ClientDuplexStream<StreamingPullRequest, StreamingPullResponse> {
    return this.#client.makeBidiStreamRequest(
      this.#streamingPull.path,
      this.#streamingPull.serialize,
      this.#streamingPull.deserialize,
      new Metadata(),
    );
  }

  /** Closes the channel. */
  close(): void {
    this.#client.close();
  }
}
