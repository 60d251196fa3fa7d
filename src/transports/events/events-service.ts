// streamgate.v1.Events over the stream hub and the engine: Subscribe, Connect (see connect-session.ts), PublishStream.
import type { ServiceImpl } from "@connectrpc/connect";
import { compileFilter, expandTopicName, parseTopicName } from "../../broker/index.js";
import type { Engine } from "../../engines/engine.js";
import { Code, StreamgateError } from "../../errors/index.js";
import type { Events } from "../../gen/streamgate/v1/events_pb.js";
import { liveConnections } from "../../observability/index.js";
import { type StreamHub, withResumeHint } from "../../streams/index.js";
import { runConnectSession } from "./connect-session.js";
import { eventToProto, inputsFromProto, positionFromProto } from "./convert.js";

/** Options of the Events service. */
export interface EventsServiceOptions {
  engine: Engine;
  hub: StreamHub;
  /** Largest message accepted by Connect publish and PublishStream, in bytes. */
  maxMessageBytes: number;
  /** Idle interval after which a Connect stream gets a heartbeat; Subscribe relays the hub's heartbeats. */
  heartbeatMs: number;
  /** Subscriptions one Connect stream may hold. Default 100. */
  maxSubscriptionsPerStream?: number;
  /** Messages one PublishStream call may publish (its response lists them all). Default 100 000. */
  maxMessagesPerPublishStream?: number;
}

/** Implements streamgate.v1.Events; errors are StreamgateErrors (mapped by the error interceptor). */
export function createEventsService(options: EventsServiceOptions): ServiceImpl<typeof Events> {
  const { engine, hub, maxMessageBytes } = options;
  const maxMessagesPerPublishStream = options.maxMessagesPerPublishStream ?? 100_000;
  return {
    async *subscribe(request, context) {
      liveConnections.track("grpc", context.signal);
      // A short name (`orders`) is a topic of the default project, as on every transport.
      const topic = expandTopicName(request.topic);
      parseTopicName(topic, "topic");
      compileFilter(request.filter);
      const subscription = await hub.subscribe({
        topic,
        from: positionFromProto(request.position, "position"),
        filter: request.filter,
        signal: context.signal,
      });
      try {
        for await (const event of subscription) yield eventToProto(event);
        // Server shutdown or drain: end with its UNAVAILABLE so the client reconnects, not with OK.
        if (context.signal.aborted) throw context.signal.reason;
      } catch (error) {
        throw withResumeHint(error, subscription.lastOffset);
      }
    },

    connect(requests, context) {
      liveConnections.track("grpc", context.signal);
      return runConnectSession(requests, context.signal, {
        engine,
        hub,
        maxMessageBytes,
        heartbeatMs: options.heartbeatMs,
        maxSubscriptions: options.maxSubscriptionsPerStream ?? 100,
      });
    },

    async publishStream(requests) {
      const offsets: bigint[] = [];
      const messageIds: string[] = [];
      let index = 0;
      for await (const request of requests) {
        const topic = expandTopicName(request.topic);
        parseTopicName(topic, `requests[${index}].topic`);
        if (offsets.length + request.messages.length > maxMessagesPerPublishStream) {
          throw new StreamgateError(
            Code.RESOURCE_EXHAUSTED,
            `a PublishStream call publishes at most ${maxMessagesPerPublishStream} messages; ${offsets.length} were published, start a new call for the rest`,
            { reason: "TOO_MANY_MESSAGES" },
          );
        }
        const refs = await engine.publish(topic, inputsFromProto(request.messages, maxMessageBytes));
        for (const ref of refs) {
          offsets.push(BigInt(ref.offset));
          messageIds.push(ref.messageId);
        }
        index += 1;
      }
      return { offsets, messageIds };
    },
  };
}
