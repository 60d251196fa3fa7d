// A small typed client over fetch for the Pub/Sub v1 REST API the CLI talks to.
import { CliError } from "./args.js";

/** A topic resource as Pub/Sub REST returns it. */
export interface Topic {
  name: string;
  labels?: Record<string, string>;
  messageRetentionDuration?: string;
  [field: string]: unknown;
}

/** A subscription resource as Pub/Sub REST returns and accepts it. */
export interface Subscription {
  name?: string;
  topic: string;
  ackDeadlineSeconds?: number;
  filter?: string;
  deadLetterPolicy?: { deadLetterTopic?: string; maxDeliveryAttempts?: number };
  retryPolicy?: { minimumBackoff?: string; maximumBackoff?: string };
  enableMessageOrdering?: boolean;
  retainAckedMessages?: boolean;
  messageRetentionDuration?: string;
  expirationPolicy?: { ttl?: string };
  pushConfig?: { pushEndpoint?: string; attributes?: Record<string, string> };
  labels?: Record<string, string>;
  [field: string]: unknown;
}

/** A snapshot resource. */
export interface Snapshot {
  name: string;
  topic?: string;
  expireTime?: string;
  labels?: Record<string, string>;
  [field: string]: unknown;
}

/** A message to publish; `data` is base64. */
export interface OutgoingMessage {
  data?: string;
  attributes?: Record<string, string>;
  orderingKey?: string;
}

/** A received message; `data` is base64. streamgate adds `offset`. */
export interface PubsubMessage {
  data?: string;
  attributes?: Record<string, string>;
  messageId: string;
  publishTime: string;
  orderingKey?: string;
  offset?: string | number;
}

/** One message of a pull response. */
export interface ReceivedMessage {
  ackId: string;
  message: PubsubMessage;
  deliveryAttempt?: number;
}

/** The publish response; streamgate adds per-message `offsets`. */
export interface PublishResponse {
  messageIds: string[];
  offsets?: (string | number)[];
}

/** Where to seek: a time (RFC 3339) or a snapshot name. */
export type SeekTarget = { time: string } | { snapshot: string };

/** An error response in Google's JSON form, e.g. `NOT_FOUND: Resource not found (...)`. */
export class ApiError extends CliError {
  override readonly name = "ApiError";
  /** HTTP status of the response. */
  readonly httpStatus: number;
  /** Google status name, e.g. `NOT_FOUND`. */
  readonly status: string;

  constructor(httpStatus: number, status: string, message: string) {
    super(`${status}: ${message}`, 1);
    this.httpStatus = httpStatus;
    this.status = status;
  }
}

/** Options of {@link RestClient}. */
export interface RestClientOptions {
  /** Base URL, e.g. `http://localhost:8080`. */
  baseUrl: string;
  /** Bearer token sent as `Authorization`. Default none. */
  token?: string | undefined;
  /** Per-request timeout in ms. Default 30 000. */
  timeoutMs?: number;
  /** Value of `User-Agent`. */
  userAgent?: string;
}

type Method = "GET" | "PUT" | "POST" | "DELETE";

/** The Pub/Sub v1 REST calls the CLI needs; names are full resource names. */
export class RestClient {
  readonly baseUrl: string;
  readonly #token: string | undefined;
  readonly #timeoutMs: number;
  readonly #userAgent: string;

  constructor(options: RestClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#userAgent = options.userAgent ?? "streamgate-cli";
  }

  createTopic(topic: Topic): Promise<Topic> {
    return this.#call("PUT", encodeName(topic.name), withoutName(topic));
  }
  getTopic(name: string): Promise<Topic> {
    return this.#call("GET", encodeName(name));
  }
  async deleteTopic(name: string): Promise<void> {
    await this.#call("DELETE", encodeName(name));
  }
  listTopics(project: string): Promise<Topic[]> {
    return this.#list(`${encodeName(`projects/${project}`)}/topics`, "topics");
  }
  publish(topic: string, messages: OutgoingMessage[]): Promise<PublishResponse> {
    return this.#call("POST", `${encodeName(topic)}:publish`, { messages });
  }

  createSubscription(name: string, subscription: Subscription): Promise<Subscription> {
    return this.#call("PUT", encodeName(name), subscription);
  }
  getSubscription(name: string): Promise<Subscription> {
    return this.#call("GET", encodeName(name));
  }
  async deleteSubscription(name: string): Promise<void> {
    await this.#call("DELETE", encodeName(name));
  }
  listSubscriptions(project: string): Promise<Subscription[]> {
    return this.#list(`${encodeName(`projects/${project}`)}/subscriptions`, "subscriptions");
  }
  /** Pulls up to `maxMessages`; with `returnImmediately` false the server long-polls. */
  async pull(subscription: string, maxMessages: number, returnImmediately: boolean): Promise<ReceivedMessage[]> {
    const timeoutMs = returnImmediately ? this.#timeoutMs : Math.max(this.#timeoutMs, 120_000);
    const body = { maxMessages, returnImmediately };
    const response = await this.#call<{ receivedMessages?: ReceivedMessage[] }>(
      "POST",
      `${encodeName(subscription)}:pull`,
      body,
      timeoutMs,
    );
    return response.receivedMessages ?? [];
  }
  async acknowledge(subscription: string, ackIds: string[]): Promise<void> {
    await this.#call("POST", `${encodeName(subscription)}:acknowledge`, { ackIds });
  }
  async seek(subscription: string, target: SeekTarget): Promise<void> {
    await this.#call("POST", `${encodeName(subscription)}:seek`, target);
  }

  createSnapshot(name: string, subscription: string, labels?: Record<string, string>): Promise<Snapshot> {
    return this.#call("PUT", encodeName(name), labels === undefined ? { subscription } : { subscription, labels });
  }
  getSnapshot(name: string): Promise<Snapshot> {
    return this.#call("GET", encodeName(name));
  }
  async deleteSnapshot(name: string): Promise<void> {
    await this.#call("DELETE", encodeName(name));
  }
  listSnapshots(project: string): Promise<Snapshot[]> {
    return this.#list(`${encodeName(`projects/${project}`)}/snapshots`, "snapshots");
  }

  async #list<T>(collection: string, field: string): Promise<T[]> {
    const items: T[] = [];
    const seen = new Set<string>();
    let pageToken = "";
    do {
      const query = pageToken === "" ? "" : `?pageToken=${encodeURIComponent(pageToken)}`;
      const page = await this.#call<Record<string, unknown>>("GET", `${collection}${query}`);
      const pageItems = page[field];
      if (Array.isArray(pageItems)) items.push(...(pageItems as T[]));
      pageToken = typeof page.nextPageToken === "string" ? page.nextPageToken : "";
      if (seen.has(pageToken)) break; // a server repeating a token would loop forever
      seen.add(pageToken);
    } while (pageToken !== "");
    return items;
  }

  async #call<T>(method: Method, path: string, body?: unknown, timeoutMs = this.#timeoutMs): Promise<T> {
    const url = `${this.baseUrl}/v1/${path}`;
    const headers: Record<string, string> = { accept: "application/json", "user-agent": this.#userAgent };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    let response: Response;
    let text: string;
    try {
      const init: RequestInit = { method, headers, signal: AbortSignal.timeout(timeoutMs) };
      if (body !== undefined) init.body = JSON.stringify(body);
      response = await fetch(url, init);
      text = await response.text();
    } catch (error) {
      throw this.#networkError(error, timeoutMs);
    }
    const json = parseJson(text);
    if (!response.ok) throw toApiError(response, json, text);
    if (json === undefined) {
      if (text.trim() === "") return {} as T;
      throw new CliError(`unexpected non-JSON response from ${url} (HTTP ${response.status})`);
    }
    return json as T;
  }

  #networkError(error: unknown, timeoutMs: number): CliError {
    if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) {
      return new CliError(`no response from ${this.baseUrl} within ${timeoutMs / 1000}s`);
    }
    return new CliError(`cannot reach ${this.baseUrl}: ${networkReason(error)}`);
  }
}

/** The most specific reason of a fetch failure, e.g. `ECONNREFUSED`. */
export function networkReason(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") return code;
    const nested = (current as { errors?: unknown }).errors;
    if (Array.isArray(nested) && nested[0] instanceof Error) {
      const nestedCode = (nested[0] as { code?: unknown }).code;
      if (typeof nestedCode === "string") return nestedCode;
    }
    if (current.cause === undefined) return current.message;
    current = current.cause;
  }
  return String(current);
}

/** Percent-encodes each segment of a resource name, keeping the slashes between them. */
export function encodeName(name: string): string {
  return name.split("/").map(encodeURIComponent).join("/");
}

function withoutName(topic: Topic): Omit<Topic, "name"> {
  const { name: _name, ...rest } = topic;
  return rest;
}

function parseJson(text: string): unknown {
  try {
    return text.trim() === "" ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}

function toApiError(response: Response, json: unknown, text: string): ApiError {
  const error = (json as { error?: { status?: unknown; message?: unknown } } | undefined)?.error;
  if (error && typeof error.message === "string") {
    const status = typeof error.status === "string" && error.status !== "" ? error.status : `HTTP ${response.status}`;
    return new ApiError(response.status, status, error.message);
  }
  const snippet = text.trim().replace(/\s+/g, " ").slice(0, 200);
  const detail = snippet === "" ? response.statusText : snippet;
  return new ApiError(response.status, `HTTP ${response.status}`, detail || "no message");
}
