// Live connection counts per streaming transport, for the dashboard: transports register, readers take counts.

/** Streaming transports whose live connections are counted. */
export const StreamTransport = {
  /** Server-Sent Events responses on GET …/topics/{t}/events. */
  sse: "sse",
  /** WebSocket connections on /v1/ws. */
  websocket: "websocket",
  /** streamgate.v1.Events Subscribe / Connect calls (gRPC, gRPC-Web and Connect). */
  grpc: "grpc",
} as const;
export type StreamTransport = (typeof StreamTransport)[keyof typeof StreamTransport];

/** Something whose end ends the connection: an AbortSignal, or a stream/socket emitting `close`. */
export type ConnectionLifetime = AbortSignal | { on(event: "close", listener: () => void): unknown };

export interface ConnectionRegistry {
  /** Counts one connection of `transport` until `lifetime` ends (signal aborts or `close` fires). */
  track(transport: StreamTransport, lifetime: ConnectionLifetime): void;
  /** Current counts, every transport present (0 when none). */
  counts(): Record<StreamTransport, number>;
}

export function createConnectionRegistry(): ConnectionRegistry {
  const open: Record<StreamTransport, number> = { sse: 0, websocket: 0, grpc: 0 };
  return {
    track(transport, lifetime) {
      if (lifetime instanceof AbortSignal && lifetime.aborted) return;
      open[transport] += 1;
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        open[transport] -= 1;
      };
      if (lifetime instanceof AbortSignal) lifetime.addEventListener("abort", release, { once: true });
      // `on`, not `once` (release is idempotent): `once` adds a wrapper, its context and a property array per stream.
      else lifetime.on("close", release);
    },
    counts: () => ({ ...open }),
  };
}

/**
 * The process-wide registry the transports report to (like prom-client's default registry): one
 * server per process is the deployment shape; tests running several servers see the sum.
 */
export const liveConnections: ConnectionRegistry = createConnectionRegistry();
