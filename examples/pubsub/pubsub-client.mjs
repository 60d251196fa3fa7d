// The official Google Cloud Pub/Sub client against streamgate: create a topic and a subscription, publish one
// message and receive it. Needs `npm install @google-cloud/pubsub` and PUBSUB_EMULATOR_HOST=localhost:8080.
import { PubSub } from "@google-cloud/pubsub";

const pubsub = new PubSub({ projectId: "shop" }); // PUBSUB_EMULATOR_HOST points it at streamgate
const [topic] = await pubsub.createTopic("orders");
const [subscription] = await topic.createSubscription("orders-worker");

const received = new Promise((resolve) => {
  subscription.on("message", (message) => {
    console.log(`received ${message.data.toString()} kind=${message.attributes.kind}`);
    message.ack();
    resolve();
  });
});
const messageId = await topic.publishMessage({ data: Buffer.from('{"id":1}'), attributes: { kind: "created" } });
console.log(`published ${messageId}`);
await received;
await subscription.close();
await pubsub.close();
