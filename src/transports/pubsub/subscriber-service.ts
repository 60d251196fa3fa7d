// google.pubsub.v1.Subscriber over the Engine: validates, converts and delegates (shared by gRPC and REST).
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { parseProjectName, parseSnapshotName, parseSubscriptionName, parseTopicName } from "../../broker/names.js";
import type { Engine } from "../../engines/engine.js";
import { errors } from "../../errors/index.js";
import type { Subscriber } from "../../gen/google/pubsub/v1/pubsub_pb.js";
import { type AckOutcome, exactlyOnceFailure, settleAckIds } from "./ack-outcome.js";
import {
  pushConfigFromProto,
  receivedToProto,
  snapshotToProto,
  subscriptionFromProto,
  subscriptionToProto,
  timestampToMs,
} from "./convert.js";
import { checkDeadline, type PubsubLimits, pageSize } from "./limits.js";
import { createStreamingPull } from "./streaming-pull.js";

/** Implements every Subscriber method; errors are StreamgateErrors (mapped by the transport). */
export function createSubscriberService(engine: Engine, limits: PubsubLimits): ServiceImpl<typeof Subscriber> {
  return {
    async createSubscription(request) {
      parseSubscriptionName(request.name, "name");
      parseTopicName(request.topic, "topic");
      const init = subscriptionFromProto(request);
      return subscriptionToProto(await engine.createSubscription(init));
    },
    async getSubscription(request) {
      parseSubscriptionName(request.subscription, "subscription");
      return subscriptionToProto(await engine.getSubscription(request.subscription));
    },
    async updateSubscription(request) {
      if (request.subscription === undefined) throw errors.invalidArgument("subscription", "is required");
      const paths = request.updateMask?.paths ?? [];
      if (paths.length === 0) throw errors.invalidArgument("update_mask", "must name at least one field");
      parseSubscriptionName(request.subscription.name, "subscription.name");
      const current = await engine.getSubscription(request.subscription.name);
      const proto = { ...request.subscription, topic: current.topic };
      const patch = subscriptionFromProto(proto);
      return subscriptionToProto(await engine.updateSubscription(request.subscription.name, { patch, paths }));
    },
    async listSubscriptions(request) {
      const project = parseProjectName(request.project, "project");
      const page = await engine.listSubscriptions(project, {
        pageSize: pageSize(request.pageSize),
        pageToken: request.pageToken,
      });
      return { subscriptions: page.items.map(subscriptionToProto), nextPageToken: page.nextPageToken };
    },
    async deleteSubscription(request) {
      parseSubscriptionName(request.subscription, "subscription");
      await engine.deleteSubscription(request.subscription);
      return {};
    },
    async modifyAckDeadline(request) {
      parseSubscriptionName(request.subscription, "subscription");
      if (request.ackIds.length === 0) throw errors.invalidArgument("ack_ids", "must contain at least one ack ID");
      checkDeadline(request.ackDeadlineSeconds, "ack_deadline_seconds");
      const outcome = await settleAckIds(request.ackIds, (ids) =>
        engine.modifyAckDeadline(request.subscription, ids, request.ackDeadlineSeconds),
      );
      const checking = answerUnary(engine, request.subscription, outcome);
      if (checking !== undefined) await checking;
      return {};
    },
    async acknowledge(request) {
      parseSubscriptionName(request.subscription, "subscription");
      if (request.ackIds.length === 0) throw errors.invalidArgument("ack_ids", "must contain at least one ack ID");
      const outcome = await settleAckIds(request.ackIds, (ids) => engine.acknowledge(request.subscription, ids));
      const checking = answerUnary(engine, request.subscription, outcome);
      if (checking !== undefined) await checking;
      return {};
    },
    async pull(request, context: HandlerContext) {
      parseSubscriptionName(request.subscription, "subscription");
      if (request.maxMessages <= 0) throw errors.invalidArgument("max_messages", "must be greater than 0");
      const subscription = await engine.getSubscription(request.subscription);
      let waitMs = request.returnImmediately ? 0 : limits.pullWaitMs;
      const remaining = context.timeoutMs();
      if (remaining !== undefined) waitMs = Math.max(0, Math.min(waitMs, remaining - 500));
      const received = await engine.pull(request.subscription, {
        maxMessages: Math.min(request.maxMessages, 1000),
        waitMs,
        signal: context.signal,
      });
      const reportAttempts = subscription.deadLetterPolicy !== null;
      return { receivedMessages: received.map((message) => receivedToProto(message, reportAttempts)) };
    },
    streamingPull: createStreamingPull(engine),
    async modifyPushConfig(request) {
      parseSubscriptionName(request.subscription, "subscription");
      const push = pushConfigFromProto(request.pushConfig);
      await engine.updateSubscription(request.subscription, { patch: { pushConfig: push }, paths: ["push_config"] });
      return {};
    },
    async getSnapshot(request) {
      parseSnapshotName(request.snapshot, "snapshot");
      return snapshotToProto(await engine.getSnapshot(request.snapshot));
    },
    async listSnapshots(request) {
      const project = parseProjectName(request.project, "project");
      const page = await engine.listSnapshots(project, {
        pageSize: pageSize(request.pageSize),
        pageToken: request.pageToken,
      });
      return { snapshots: page.items.map(snapshotToProto), nextPageToken: page.nextPageToken };
    },
    async createSnapshot(request) {
      parseSnapshotName(request.name, "name");
      parseSubscriptionName(request.subscription, "subscription");
      return snapshotToProto(await engine.createSnapshot(request.name, request.subscription, { ...request.labels }));
    },
    async updateSnapshot(request) {
      if (request.snapshot === undefined) throw errors.invalidArgument("snapshot", "is required");
      const paths = request.updateMask?.paths ?? [];
      if (paths.length === 0) throw errors.invalidArgument("update_mask", "must name at least one field");
      parseSnapshotName(request.snapshot.name, "snapshot.name");
      const patch = {
        labels: { ...request.snapshot.labels },
        ...(request.snapshot.expireTime === undefined
          ? {}
          : { expireTimeMs: timestampToMs(request.snapshot.expireTime) }),
      };
      return snapshotToProto(await engine.updateSnapshot(request.snapshot.name, { patch, paths }));
    },
    async deleteSnapshot(request) {
      parseSnapshotName(request.snapshot, "snapshot");
      await engine.deleteSnapshot(request.snapshot);
      return {};
    },
    async seek(request) {
      parseSubscriptionName(request.subscription, "subscription");
      const target = request.target;
      if (target.case === "time") {
        await engine.seek(request.subscription, { timeMs: timestampToMs(target.value) });
      } else if (target.case === "snapshot") {
        parseSnapshotName(target.value, "snapshot");
        await engine.seek(request.subscription, { snapshot: target.value });
      } else {
        throw errors.invalidArgument("target", "one of time or snapshot is required");
      }
      return {};
    },
  };
}

/**
 * Unary Acknowledge/ModifyAckDeadline: on an exactly-once subscription every failed id is reported
 * per id (Pub/Sub's ErrorInfo); otherwise stale ids are ignored and a malformed one is INVALID_ARGUMENT.
 */
function answerUnary(engine: Engine, subscription: string, outcome: AckOutcome): Promise<void> | undefined {
  // Known from the engine's answer (the usual call): checked at once, no promise to wait for.
  if (outcome.exactlyOnce !== null) {
    checkOutcome(outcome.exactlyOnce, outcome);
    return undefined;
  }
  return engine.getSubscription(subscription).then((found) => checkOutcome(found.enableExactlyOnceDelivery, outcome));
}

function checkOutcome(exactlyOnce: boolean, outcome: AckOutcome): void {
  if (exactlyOnce) {
    const failure = exactlyOnceFailure(outcome);
    if (failure !== null) throw failure;
  } else if (outcome.malformed !== null) {
    throw outcome.malformed;
  }
}
