// Test clients for the live-stream transports: an SSE reader over fetch and a JSON WebSocket client over `ws`.
import { type ClientRequest, get as httpGet, type IncomingHttpHeaders } from "node:http";
import WebSocket from "ws";

export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/**
 * Reads an SSE response over node:http (undici's fetch does not close the TCP connection when a
 * streaming body is aborted, which the harness would report as a leak).
 */
export class SseReader {
  readonly events: SseEvent[] = [];
  comments = 0;
  retry: number | null = null;
  ended = false;
  private waiters: (() => void)[] = [];

  private constructor(
    private readonly request: ClientRequest,
    readonly status: number,
    private readonly headers: IncomingHttpHeaders,
  ) {}

  static open(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
    return new Promise((resolve, reject) => {
      const request = httpGet(url, { headers: { accept: "text/event-stream", ...headers } }, (response) => {
        const reader = new SseReader(request, response.statusCode ?? 0, response.headers);
        response.setEncoding("utf8");
        let buffer = "";
        response.on("data", (chunk: string) => {
          buffer += chunk;
          let end = buffer.indexOf("\n\n");
          while (end >= 0) {
            reader.parseBlock(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
            end = buffer.indexOf("\n\n");
          }
          reader.wake();
        });
        const ended = () => {
          reader.ended = true;
          reader.wake();
        };
        response.on("end", ended);
        response.on("close", ended);
        response.on("error", ended);
        resolve(reader);
      });
      request.on("error", reject);
    });
  }

  header(name: string): string {
    return String(this.headers[name] ?? "");
  }

  /** Cuts the connection. */
  close(): void {
    this.request.destroy();
  }

  /** Waits until `predicate` holds over the events so far (or the stream ended). */
  async until(predicate: (reader: SseReader) => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this)) {
      if (this.ended) throw new Error(`SSE stream ended before the condition held (${this.events.length} events)`);
      if (Date.now() > deadline)
        throw new Error(`SSE condition not met in ${timeoutMs} ms (${this.events.length} events)`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  messages(): { offset: string; data: string; attributes: Record<string, string> }[] {
    return this.events.filter((event) => event.event === "message").map((event) => JSON.parse(event.data));
  }

  private parseBlock(block: string): void {
    let event: SseEvent | null = null;
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) this.comments++;
      else if (line.startsWith("retry: ")) this.retry = Number(line.slice(7));
      else {
        const colon = line.indexOf(": ");
        const field = line.slice(0, colon);
        const value = line.slice(colon + 2);
        event ??= { event: "message", data: "" };
        if (field === "id") event.id = value;
        else if (field === "event") event.event = value;
        else if (field === "data") event.data = value;
      }
    }
    if (event !== null) this.events.push(event);
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}

export interface WsFrame {
  type: string;
  id?: string;
  ref?: string;
  message?: { offset: string; data: string; attributes: Record<string, string> };
  [key: string]: unknown;
}

/** A JSON WebSocket client that records frames and the close code. */
export class WsClient {
  readonly frames: WsFrame[] = [];
  closeCode: number | null = null;
  closeReason = "";
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: WebSocket) {
    socket.on("message", (data) => {
      this.frames.push(JSON.parse(String(data)) as WsFrame);
      this.wake();
    });
    socket.on("close", (code, reason) => {
      this.closeCode = code;
      this.closeReason = String(reason);
      this.wake();
    });
    socket.on("error", () => undefined);
  }

  static open(baseUrl: string, options: WebSocket.ClientOptions = {}): Promise<WsClient> {
    const socket = new WebSocket(`${baseUrl.replace(/^http/, "ws")}/v1/ws`, options);
    return new Promise((resolve, reject) => {
      socket.once("open", () => resolve(new WsClient(socket)));
      socket.once("error", reject);
    });
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  messages(id?: string): NonNullable<WsFrame["message"]>[] {
    return this.frames
      .filter((frame) => frame.type === "message" && (id === undefined || frame.id === id))
      .map((frame) => frame.message!);
  }

  async until(predicate: (client: WsClient) => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this)) {
      if (this.closeCode !== null)
        throw new Error(`WebSocket closed (${this.closeCode} ${this.closeReason}) before the condition held`);
      if (Date.now() > deadline)
        throw new Error(`WebSocket condition not met in ${timeoutMs} ms (${this.frames.length} frames)`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async closed(timeoutMs = 10_000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + timeoutMs;
    while (this.closeCode === null) {
      if (Date.now() > deadline) throw new Error("WebSocket did not close in time");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return { code: this.closeCode, reason: this.closeReason };
  }

  async close(): Promise<void> {
    if (this.closeCode !== null) return;
    this.socket.close();
    await this.closed().catch(() => this.socket.terminate());
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}

export const encode = (text: string) => Buffer.from(text).toString("base64");
export const decode = (base64: string) => Buffer.from(base64, "base64").toString();

/** fetch() with `connection: close`, so undici keeps no idle socket the server's leak check would count. */
export function fetchClose(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, {
    ...init,
    headers: { ...(init.headers as Record<string, string> | undefined), connection: "close" },
  });
}
