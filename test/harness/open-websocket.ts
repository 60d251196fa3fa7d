// Opens a `ws` client and waits for the upgrade, failing clearly on an error or a refused upgrade.
import WebSocket from "ws";
import { withTimeout } from "./wait-for.js";

/** A connected WebSocket to `url`; rejects with the upgrade's HTTP status when refused, or after `timeoutMs`. */
export async function openWebSocket(
  url: string,
  options: WebSocket.ClientOptions = {},
  timeoutMs = 5_000,
): Promise<WebSocket> {
  const socket = new WebSocket(url, options);
  try {
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        socket.once("open", () => resolve());
        socket.once("error", reject);
        socket.once("unexpected-response", (_request, response) =>
          reject(new Error(`upgrade answered ${response.statusCode}`)),
        );
      }),
      timeoutMs,
      "WebSocket open",
    );
  } catch (error) {
    socket.terminate();
    throw error;
  }
  return socket;
}
