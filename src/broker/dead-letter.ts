// The copy of a message forwarded to a dead-letter topic, with the attributes Pub/Sub adds.
import type { MessageInput, StoredMessage } from "./types.js";

/**
 * The message to publish on the dead-letter topic: same data and ordering key, plus Pub/Sub's
 * `CloudPubSubDeadLetterSource*` attributes naming where it came from.
 */
export function deadLetterMessage(
  message: StoredMessage,
  subscriptionName: string,
  deliveryAttempts: number,
): MessageInput {
  const [, project = "", , subscription = ""] = subscriptionName.split("/");
  return {
    data: message.data,
    orderingKey: message.orderingKey,
    attributes: {
      ...message.attributes,
      CloudPubSubDeadLetterSourceDeliveryCount: String(deliveryAttempts),
      CloudPubSubDeadLetterSourceSubscription: subscription,
      CloudPubSubDeadLetterSourceSubscriptionProject: project,
      CloudPubSubDeadLetterSourceTopicPublishTime: new Date(message.publishTimeMs).toISOString(),
    },
  };
}
