// One Events/Connect stream: many subscriptions and publishes multiplexed over a bidi call.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { compileFilter, expandTopicName, parseTopicName } from "../../broker/index.js";
import type { Engine } from "../../engines/engine.js";
import { Code, StreamgateError } from "../../errors/index.js";
import {
  type ConnectRequest,
  type ConnectResponse,
  ConnectResponseSchema,
  type PublishCommand,
  type SubscribeCommand,
} from "../../gen/streamgate/v1/events_pb.js";
import { OutputQueue, type StreamHub, withResumeHint } from "../../streams/index.js";
import { eventToProto, inputsFromProto, msToTimestamp, positionFromProto } from "./convert.js";

/** What a Connect session needs. */
export interface ConnectSessionOptions {
  engine: Engine;
  hub: StreamHub;
  maxMessageBytes: number;
  heartbeatMs: number;
  maxSubscriptions: number;
}

/** Responses queued before subscriptions wait for the client (then the hub's per-subscriber byte limit applies). */
const MAX_QUEUED_RESPONSES = 64;
/** Command replies queued for a client that does not read before the stream is failed. */
const MAX_FORCED_RESPONSES = 10_000;

interface ActiveSubscription {
  readonly controller: AbortController;
  readonly done: Promise<void>;
}

/**
 * Runs a session: commands are handled in the order received; each subscription pumps its hub feed
 * into the shared bounded output. A client half-close ends the session once pending replies are sent.
 * Per-subscription heartbeats are folded into one stream-level heartbeat (one frame per idle interval,
 * not one per subscription).
 */
export async function* runConnectSession(
  requests: AsyncIterable<ConnectRequest>,
  signal: AbortSignal,
  options: ConnectSessionOptions,
): AsyncGenerator<ConnectResponse> {
  const session = new AbortController();
  const output = new OutputQueue<ConnectResponse>({ maxQueued: MAX_QUEUED_RESPONSES, maxForced: MAX_FORCED_RESPONSES });
  // Server shutdown or drain: end with its UNAVAILABLE (after queued replies) so the client reconnects.
  const onAbort = () => {
    session.abort(signal.reason);
    output.fail(signal.reason);
  };
  signal.addEventListener("abort", onAbort, { once: true });
  const subscriptions = new Map<string, ActiveSubscription>();
  let lastWriteMs = Date.now();

  const reply = (kind: MessageInitShape<typeof ConnectResponseSchema>["kind"]) =>
    output.pushNow(create(ConnectResponseSchema, { kind }));
  const replyError = (target: { id?: string; ref?: string }, error: unknown) => {
    const normalized = StreamgateError.from(error);
    reply({
      case: "error",
      value: {
        id: target.id ?? "",
        ref: target.ref ?? "",
        code: normalized.code,
        reason: normalized.reason,
        message: normalized.message,
      },
    });
  };

  const subscribe = async (command: SubscribeCommand) => {
    if (command.id === "") throw invalid("subscribe.id", "is required");
    if (subscriptions.has(command.id)) {
      throw new StreamgateError(Code.ALREADY_EXISTS, `subscription id ${JSON.stringify(command.id)} is in use`, {
        reason: "SUBSCRIPTION_ID_IN_USE",
      });
    }
    if (subscriptions.size >= options.maxSubscriptions) {
      throw new StreamgateError(
        Code.RESOURCE_EXHAUSTED,
        `a Connect stream holds at most ${options.maxSubscriptions} subscriptions`,
        { reason: "TOO_MANY_SUBSCRIPTIONS" },
      );
    }
    const topic = expandTopicName(command.topic);
    parseTopicName(topic, "subscribe.topic");
    compileFilter(command.filter);
    const controller = new AbortController();
    const stop = () => controller.abort();
    session.signal.addEventListener("abort", stop, { once: true });
    const feed = await options.hub.subscribe({
      topic,
      from: positionFromProto(command.position, "subscribe.position"),
      filter: command.filter,
      signal: controller.signal,
    });
    reply({ case: "subscribed", value: { id: command.id, topic } });
    const done = (async () => {
      try {
        for await (const event of feed) {
          if (event.kind === "heartbeat") continue;
          const response = create(ConnectResponseSchema, {
            kind: { case: "event", value: { subscriptionId: command.id, event: eventToProto(event) } },
          });
          if (!(await output.push(response)) || controller.signal.aborted) break;
        }
      } catch (error) {
        if (!controller.signal.aborted) replyError({ id: command.id }, withResumeHint(error, feed.lastOffset));
      } finally {
        session.signal.removeEventListener("abort", stop);
        if (!controller.signal.aborted) subscriptions.delete(command.id);
      }
    })();
    subscriptions.set(command.id, { controller, done });
  };

  const unsubscribe = async (id: string) => {
    const active = subscriptions.get(id);
    if (active === undefined) {
      throw new StreamgateError(Code.NOT_FOUND, `no subscription with id ${JSON.stringify(id)} on this stream`, {
        reason: "SUBSCRIPTION_ID_NOT_FOUND",
      });
    }
    subscriptions.delete(id);
    active.controller.abort();
    await active.done;
    reply({ case: "unsubscribed", value: { id } });
  };

  const publish = async (command: PublishCommand) => {
    const topic = expandTopicName(command.topic);
    parseTopicName(topic, "publish.topic");
    const refs = await options.engine.publish(topic, inputsFromProto(command.messages, options.maxMessageBytes));
    reply({
      case: "published",
      value: {
        ref: command.ref,
        offsets: refs.map((ref) => BigInt(ref.offset)),
        messageIds: refs.map((ref) => ref.messageId),
      },
    });
  };

  const readCommands = async () => {
    try {
      for await (const request of requests) {
        if (session.signal.aborted) break;
        const command = request.kind;
        try {
          if (command.case === "subscribe") await subscribe(command.value);
          else if (command.case === "unsubscribe") await unsubscribe(command.value.id);
          else if (command.case === "publish") await publish(command.value);
          else throw invalid("kind", "one of subscribe, unsubscribe or publish is required");
        } catch (error) {
          const target =
            command.case === "publish"
              ? { ref: command.value.ref }
              : command.case === undefined
                ? {}
                : { id: command.value.id };
          replyError(target, error);
        }
      }
      output.end();
    } catch (error) {
      // The call was cancelled or the request stream broke: nothing left to answer.
      output.fail(error);
    }
  };

  const heartbeat = setInterval(
    () => {
      if (Date.now() - lastWriteMs >= options.heartbeatMs) {
        reply({ case: "heartbeat", value: { time: msToTimestamp(Date.now()) } });
      }
    },
    Math.max(50, Math.floor(options.heartbeatMs / 4)),
  );

  void readCommands();
  try {
    for await (const response of output.drain()) {
      lastWriteMs = Date.now();
      yield response;
    }
  } finally {
    clearInterval(heartbeat);
    signal.removeEventListener("abort", onAbort);
    session.abort();
    output.end();
    await Promise.allSettled([...subscriptions.values()].map((active) => active.done));
  }
}

function invalid(field: string, message: string): StreamgateError {
  return new StreamgateError(Code.INVALID_ARGUMENT, `${field}: ${message}`, {
    reason: "INVALID_ARGUMENT",
    details: { field },
  });
}
