// Decorates an Engine so every publish and delivery, whatever the transport, is counted in the metrics (and publishes carry the trace context).
import type { ReceivedMessage } from "../broker/types.js";
import type { DeliveryStream, Engine } from "../engines/engine.js";
import type { ServerMetrics } from "./metrics.js";
import { currentTraceContext, withTraceAttributes } from "./trace-context.js";

function observeDeliveries(metrics: ServerMetrics, subscription: string, path: string, batch: ReceivedMessage[]): void {
  if (batch.length === 0) return;
  metrics.delivered.inc({ subscription, path }, batch.length);
  const now = Date.now();
  for (const received of batch) {
    if (received.deliveryAttempt <= 1) {
      metrics.deliveryLatency.observe({ path }, Math.max(0, now - received.message.publishTimeMs) / 1000);
    }
  }
}

/** Returns `engine` with publish, pull and openStream counted, publishes traced; every other method passes through. */
export function instrumentEngine(engine: Engine, metrics: ServerMetrics): Engine {
  const overrides: Partial<Engine> = {
    async publish(topic, messages) {
      // Every publish path (gRPC, REST, Events, WebSocket, chat) meets here: the request's W3C trace
      // context becomes the `traceparent` attribute that deliveries carry.
      const refs = await engine.publish(topic, withTraceAttributes(messages, currentTraceContext()));
      metrics.published.inc({ topic }, refs.length);
      return refs;
    },
    async pull(name, options) {
      const received = await engine.pull(name, options);
      observeDeliveries(metrics, name, "pull", received);
      return received;
    },
    openStream(name, options) {
      const stream = engine.openStream(name, options);
      const counted: DeliveryStream = {
        setFlowControl: (messages, bytes) => stream.setFlowControl(messages, bytes),
        setAckDeadline: (seconds) => stream.setAckDeadline(seconds),
        async *[Symbol.asyncIterator]() {
          for await (const batch of stream) {
            observeDeliveries(metrics, name, options.clientId === "push" ? "push" : "stream", batch);
            yield batch;
          }
        },
      };
      return counted;
    },
  };
  return new Proxy(engine, {
    get(target, property, receiver) {
      if (typeof property === "string" && property in overrides) return overrides[property as keyof Engine];
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
