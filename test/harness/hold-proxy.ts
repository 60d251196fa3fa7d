// A TCP forwarder that can hold back what the server answers while still passing what the client sends.
import { connect, createServer, type Socket } from "node:net";

export interface HoldProxy {
  hostPort: string;
  /** From now on, bytes from the server are kept back (the client sees no answer); client bytes still pass. */
  hold(): void;
  /** Bytes the client sent since {@link hold}. */
  sentSinceHold(): number;
  /** Forwards normally again (held bytes of connections still open are delivered). */
  release(): void;
  /** New connections go to 127.0.0.1:`port` (a restarted server). */
  retarget(port: number): void;
  /** Destroys every connection and stops listening. */
  close(): Promise<void>;
}

/** Forwards every connection to 127.0.0.1:`port`. */
export async function startHoldProxy(initialPort: number): Promise<HoldProxy> {
  let port = initialPort;
  const pairs = new Set<[Socket, Socket]>();
  let holding = false;
  let sent = 0;
  const held: { client: Socket; chunk: Buffer }[] = [];
  const server = createServer((client) => {
    const upstream = connect(port, "127.0.0.1");
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.on("data", (chunk: Buffer) => {
      if (holding) sent += chunk.length;
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      if (holding) held.push({ client, chunk });
      else client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("proxy has no port");
  return {
    hostPort: `127.0.0.1:${address.port}`,
    hold() {
      holding = true;
      sent = 0;
    },
    sentSinceHold: () => sent,
    retarget(next) {
      port = next;
    },
    release() {
      holding = false;
      for (const { client, chunk } of held.splice(0)) if (!client.destroyed) client.write(chunk);
    },
    async close() {
      for (const [client, upstream] of [...pairs]) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
