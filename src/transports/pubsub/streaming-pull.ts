// StreamingPull: one bidi stream per client; acks and modacks flow in while leased batches flow out.
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { parseSubscriptionName } from "../../broker/names.js";
import type { ReceivedMessage } from "../../broker/types.js";
import type { Engine } from "../../engines/engine.js";
import { errors } from "../../errors/index.js";
import type { StreamingPullRequest, StreamingPullResponseSchema } from "../../gen/google/pubsub/v1/pubsub_pb.js";
import { settleAckIds } from "./ack-outcome.js";
import { receivedToProto } from "./convert.js";
import { checkDeadline } from "./limits.js";
import { encodeStreamingPullFrame, preFramedStreamingPullResponse } from "./received-messages-encoder.js";

type ResponseInit = MessageInitShape<typeof StreamingPullResponseSchema>;

/** Builds the StreamingPull handler over `engine`. */
export function createStreamingPull(engine: Engine) {
  return async function* streamingPull(
    requests: AsyncIterable<StreamingPullRequest>,
    context: HandlerContext,
  ): AsyncGenerator<ResponseInit> {
    const iterator = requests[Symbol.asyncIterator]();
    const first = await iterator.next();
    if (first.done === true) return;
    const initial = first.value;
    parseSubscriptionName(initial.subscription, "subscription");
    const subscription = await engine.getSubscription(initial.subscription);
    const deadline =
      initial.streamAckDeadlineSeconds === 0 ? subscription.ackDeadlineSeconds : initial.streamAckDeadlineSeconds;
    if (deadline < 10 || deadline > 600) {
      throw errors.invalidArgument(
        "stream_ack_deadline_seconds",
        `must be between 10 and 600 seconds, got ${deadline}`,
      );
    }
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    context.signal.addEventListener("abort", onAbort, { once: true });
    const stream = engine.openStream(initial.subscription, {
      ackDeadlineSeconds: deadline,
      maxOutstandingMessages: Number(initial.maxOutstandingMessages),
      maxOutstandingBytes: Number(initial.maxOutstandingBytes),
      clientId: initial.clientId,
      signal: stop.signal,
    });
    const name = initial.subscription;
    const exactlyOnce = subscription.enableExactlyOnceDelivery;
    const handle = async (request: StreamingPullRequest, isFirst: boolean) => {
      if (!isFirst && request.subscription !== "") {
        throw errors.invalidArgument("subscription", "must only be set in the first StreamingPullRequest");
      }
      if (request.modifyDeadlineAckIds.length !== request.modifyDeadlineSeconds.length) {
        throw errors.invalidArgument("modify_deadline_seconds", "must have as many entries as modify_deadline_ack_ids");
      }
      if (!isFirst && request.streamAckDeadlineSeconds !== 0) {
        checkDeadline(request.streamAckDeadlineSeconds, "stream_ack_deadline_seconds");
        if (request.streamAckDeadlineSeconds < 10) {
          throw errors.invalidArgument("stream_ack_deadline_seconds", "must be between 10 and 600 seconds");
        }
        stream.setAckDeadline(request.streamAckDeadlineSeconds);
      }
      // A bad ack id never ends the stream: it is reported per id (exactly-once) or ignored.
      if (request.ackIds.length > 0) {
        const outcome = await settleAckIds(request.ackIds, (ids) => engine.acknowledge(name, ids));
        if (outcome.exactlyOnce ?? exactlyOnce) {
          confirm({
            acknowledgeConfirmation: {
              ackIds: outcome.applied,
              invalidAckIds: outcome.invalid,
              temporaryFailedAckIds: outcome.temporaryFailed,
            },
          });
        }
      }
      // Group modacks by deadline so each engine call carries a batch.
      const byDeadline = new Map<number, string[]>();
      request.modifyDeadlineSeconds.forEach((seconds, index) => {
        checkDeadline(seconds, `modify_deadline_seconds[${index}]`);
        const ids = byDeadline.get(seconds) ?? [];
        ids.push(request.modifyDeadlineAckIds[index]!);
        byDeadline.set(seconds, ids);
      });
      // One confirmation per request, over every deadline group.
      const modified = { ackIds: [] as string[], invalidAckIds: [] as string[], temporaryFailedAckIds: [] as string[] };
      let modifiedExactlyOnce = exactlyOnce;
      for (const [seconds, ids] of byDeadline) {
        const outcome = await settleAckIds(ids, (batch) => engine.modifyAckDeadline(name, batch, seconds));
        modifiedExactlyOnce = outcome.exactlyOnce ?? modifiedExactlyOnce;
        modified.ackIds.push(...outcome.applied);
        modified.invalidAckIds.push(...outcome.invalid);
        modified.temporaryFailedAckIds.push(...outcome.temporaryFailed);
      }
      if (byDeadline.size > 0 && modifiedExactlyOnce) confirm({ modifyAckDeadlineConfirmation: modified });
    };
    // Confirmations go out between message batches, as soon as the writer is free.
    const confirmations: ResponseInit[] = [];
    let wakeWriter: (() => void) | null = null;
    const confirm = (response: ResponseInit) => {
      confirmations.push(response);
      wakeWriter?.();
    };
    let readerError: unknown;
    const reader = (async () => {
      try {
        await handle(initial, true);
        for (;;) {
          const next = await iterator.next();
          if (next.done === true) break;
          await handle(next.value, false);
        }
      } catch (error) {
        if (!stop.signal.aborted) readerError = error;
      } finally {
        stop.abort();
      }
    })();
    const properties = {
      exactlyOnceDeliveryEnabled: subscription.enableExactlyOnceDelivery,
      messageOrderingEnabled: subscription.enableMessageOrdering,
    };
    const reportAttempts = subscription.deadLetterPolicy !== null;
    // Binary protocols get batches encoded by hand (protobuf-es's reflective toBinary was a sixth of the
    // server's CPU streaming a backlog); JSON ones the regular message.
    const binary = !/json/i.test(context.requestHeader.get("content-type") ?? "");
    const batches = stream[Symbol.asyncIterator]();
    let nextBatch: Promise<IteratorResult<ReceivedMessage[]>> | null = null;
    try {
      for (;;) {
        for (let response = confirmations.shift(); response !== undefined; response = confirmations.shift()) {
          yield response;
        }
        nextBatch ??= batches.next();
        const woken = new Promise<null>((resolve) => {
          wakeWriter = () => resolve(null);
        });
        const next = await Promise.race([nextBatch, woken]);
        wakeWriter = null;
        if (next === null) continue;
        nextBatch = null;
        if (next.done === true) break;
        if (binary) {
          yield preFramedStreamingPullResponse(encodeStreamingPullFrame(next.value, reportAttempts, properties));
        } else {
          yield {
            receivedMessages: next.value.map((received) => receivedToProto(received, reportAttempts)),
            subscriptionProperties: properties,
          };
        }
      }
    } finally {
      stop.abort();
      context.signal.removeEventListener("abort", onAbort);
      if (nextBatch === null) await batches.return?.();
    }
    await Promise.race([reader, new Promise((resolve) => setTimeout(resolve, 100))]);
    if (readerError !== undefined) throw readerError;
    if (context.signal.aborted) throw context.signal.reason;
  };
}
