// A TCP forwarder in front of a test server whose connections a test can cut at will: a real network cut, no client hooks.
import { connect, createServer, type Socket } from "node:net";

export interface CutProxy {
  /** http://127.0.0.1:<port> of the proxy. */
  url: string;
  hostPort: string;
  /** Connections currently forwarded. */
  open(): number;
  /** Connections that ended (either side closed or was cut) since the proxy started. */
  ended(): number;
  /** Destroys every forwarded connection (both sides, no FIN handshake); returns how many were cut. */
  cut(): number;
  /** Cuts everything and stops listening. */
  close(): Promise<void>;
}

/** Forwards every connection to `target` (host:port). */
export async function startCutProxy(target: { host: string; port: number }): Promise<CutProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let ended = 0;
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const drop = () => {
      if (pairs.delete(pair)) ended++;
      client.destroy();
      upstream.destroy();
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("proxy has no port");
  const cut = () => {
    const count = pairs.size;
    ended += count;
    for (const [client, upstream] of [...pairs]) {
      client.destroy();
      upstream.destroy();
    }
    pairs.clear();
    return count;
  };
  return {
    url: `http://127.0.0.1:${address.port}`,
    hostPort: `127.0.0.1:${address.port}`,
    open: () => pairs.size,
    ended: () => ended,
    cut,
    async close() {
      cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
