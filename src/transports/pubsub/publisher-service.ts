// google.pubsub.v1.Publisher over the Engine: validates, converts and delegates (shared by gRPC and REST).
import type { ServiceImpl } from "@connectrpc/connect";
import { messageSize } from "../../broker/message-limits.js";
import { parseProjectName, parseSubscriptionName, parseTopicName } from "../../broker/names.js";
import type { MessageInput } from "../../broker/types.js";
import type { Engine } from "../../engines/engine.js";
import { errors } from "../../errors/index.js";
import type { Publisher } from "../../gen/google/pubsub/v1/pubsub_pb.js";
import { topicFromProto, topicToProto } from "./convert.js";
import { type PubsubLimits, pageSize } from "./limits.js";

/** Implements every Publisher method; errors are StreamgateErrors (mapped by the transport). */
export function createPublisherService(engine: Engine, limits: PubsubLimits): ServiceImpl<typeof Publisher> {
  return {
    async createTopic(request) {
      parseTopicName(request.name, "name");
      const topic = topicFromProto(request);
      return topicToProto(await engine.createTopic(topic));
    },
    async updateTopic(request) {
      if (request.topic === undefined) throw errors.invalidArgument("topic", "is required");
      const paths = request.updateMask?.paths ?? [];
      if (paths.length === 0) throw errors.invalidArgument("update_mask", "must name at least one field");
      parseTopicName(request.topic.name, "topic.name");
      const patch = topicFromProto(request.topic);
      return topicToProto(await engine.updateTopic(request.topic.name, { patch, paths }));
    },
    async publish(request) {
      parseTopicName(request.topic, "topic");
      if (request.messages.length === 0) throw errors.invalidArgument("messages", "must contain at least one message");
      if (request.messages.length > limits.maxMessagesPerPublish) {
        throw errors.invalidArgument("messages", `at most ${limits.maxMessagesPerPublish} messages per request`);
      }
      // Attribute, ordering-key and empty-message rules are the engine's (validateMessages); only the
      // server's configurable size limit is checked here.
      const inputs: MessageInput[] = request.messages.map((message, index) => {
        const field = `messages[${index}]`;
        const size = messageSize(message);
        if (size > limits.maxMessageBytes) {
          throw errors.resourceExhausted(
            "MESSAGE_TOO_LARGE",
            `${field}: message of ${size} bytes exceeds the limit of ${limits.maxMessageBytes} bytes`,
          );
        }
        return { data: message.data, attributes: message.attributes, orderingKey: message.orderingKey };
      });
      const refs = await engine.publish(request.topic, inputs);
      return { messageIds: refs.map((ref) => ref.messageId) };
    },
    async getTopic(request) {
      parseTopicName(request.topic, "topic");
      return topicToProto(await engine.getTopic(request.topic));
    },
    async listTopics(request) {
      const project = parseProjectName(request.project, "project");
      const page = await engine.listTopics(project, {
        pageSize: pageSize(request.pageSize),
        pageToken: request.pageToken,
      });
      return { topics: page.items.map(topicToProto), nextPageToken: page.nextPageToken };
    },
    async listTopicSubscriptions(request) {
      parseTopicName(request.topic, "topic");
      const page = await engine.listTopicSubscriptions(request.topic, {
        pageSize: pageSize(request.pageSize),
        pageToken: request.pageToken,
      });
      return { subscriptions: page.items, nextPageToken: page.nextPageToken };
    },
    async listTopicSnapshots(request) {
      parseTopicName(request.topic, "topic");
      const page = await engine.listTopicSnapshots(request.topic, {
        pageSize: pageSize(request.pageSize),
        pageToken: request.pageToken,
      });
      return { snapshots: page.items, nextPageToken: page.nextPageToken };
    },
    async deleteTopic(request) {
      parseTopicName(request.topic, "topic");
      await engine.deleteTopic(request.topic);
      return {};
    },
    async detachSubscription(request) {
      parseSubscriptionName(request.subscription, "subscription");
      await engine.detachSubscription(request.subscription);
      return {};
    },
  };
}
