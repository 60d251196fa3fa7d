// A loopback TCP port nobody listens on right now (for programs that must be given a port instead of binding 0).
import { once } from "node:events";
import { createServer } from "node:net";

/** Binds port 0 on 127.0.0.1, reads the port and closes; a small window remains in which another may take it. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, "close");
  return port;
}
