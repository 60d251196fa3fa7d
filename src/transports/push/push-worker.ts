// Push delivery: one engine stream per push subscription, each message POSTed to its endpoint; 2xx acks, else nack.

import type { PushConfig, ReceivedMessage, Subscription, SubscriptionName } from "../../broker/types.js";
import type { Engine } from "../../engines/engine.js";
import type { Logger } from "../../observability/index.js";
import { createDeadlineSignal } from "../../signals/index.js";
import { PUSH_TOKEN_TTL_SECONDS, type PushSigner } from "./push-signer.js";

/** Unacked pushes in flight per subscription (Pub/Sub's push flow control is adaptive; this is the ceiling). */
export const PUSH_MAX_OUTSTANDING_MESSAGES = 100;
/** How often the worker re-lists the subscriptions of the projects it knows. */
export const PUSH_SCAN_INTERVAL_MS = 1_000;
/** First and last step of the per-subscription backoff after a failed push. */
export const PUSH_BACKOFF_MIN_MS = 100;
export const PUSH_BACKOFF_MAX_MS = 60_000;
/** HTTP statuses Pub/Sub treats as an acknowledgement. */
export const PUSH_ACK_STATUSES: ReadonlySet<number> = new Set([102, 200, 201, 202, 204]);

/** Collaborators of the push worker. */
export interface PushWorkerOptions {
  engine: Engine;
  signer: PushSigner;
  logger: Pick<Logger, "debug" | "info" | "warn">;
  /** The `iss` of push tokens; informational here (the signer sets it). */
  issuer: string;
  /** Override of {@link PUSH_SCAN_INTERVAL_MS}, for tests. */
  scanIntervalMs?: number;
}

/** The background component that delivers push subscriptions. */
export interface PushWorker {
  /** Starts the periodic scan (timer is unref'd). */
  start(): void;
  /** Stops scanning, ends every push stream and waits for in-flight pushes to settle (leases then expire). */
  stop(): Promise<void>;
  /**
   * Makes the project of a resource name (`projects/{project}/...`) known to the worker and rescans soon.
   * Projects the engine lists are scanned anyway; this only makes a new project's pushes start sooner.
   * The engine chain's push link (push-observation.ts) calls it after each resource call.
   */
  watch(resourceName: string): void;
}

/** Creates the push worker; nothing runs until `start()`. */
export function createPushWorker(options: PushWorkerOptions): PushWorker {
  const { engine, signer, logger } = options;
  const scanIntervalMs = options.scanIntervalMs ?? PUSH_SCAN_INTERVAL_MS;
  const projects = new Set<string>();
  const pushers = new Map<SubscriptionName, Pusher>();
  const tokens = new Map<string, { token: string; renewAtMs: number }>();
  let timer: NodeJS.Timeout | null = null;
  let running = false;
  let scanning: Promise<void> | null = null;
  let rescan = false;

  const token = async (oidc: NonNullable<PushConfig["oidcToken"]>, endpoint: string): Promise<string> => {
    const audience = oidc.audience === "" ? endpoint : oidc.audience;
    const key = `${oidc.serviceAccountEmail}\n${audience}`;
    const cached = tokens.get(key);
    if (cached !== undefined && cached.renewAtMs > Date.now()) return cached.token;
    const fresh = await signer.sign({ serviceAccountEmail: oidc.serviceAccountEmail, audience });
    // Renew well before expiry so a receiver never sees an expired token.
    tokens.set(key, { token: fresh, renewAtMs: Date.now() + (PUSH_TOKEN_TTL_SECONDS * 1000) / 2 });
    return fresh;
  };

  const scanOnce = async () => {
    const seen = new Map<SubscriptionName, Subscription>();
    try {
      for (const project of await engine.listProjects()) projects.add(project);
    } catch (error) {
      logger.warn({ err: error }, "push: listing projects failed");
    }
    for (const project of projects) {
      let pageToken = "";
      try {
        do {
          const page = await engine.listSubscriptions(project, { pageSize: 1000, pageToken });
          for (const sub of page.items) if (sub.pushConfig !== null && !sub.detached) seen.set(sub.name, sub);
          pageToken = page.nextPageToken;
        } while (pageToken !== "" && running);
      } catch (error) {
        logger.warn({ err: error, project }, "push: listing subscriptions failed");
        // Keep the pushers of this project: a transient listing error must not stop delivery.
        for (const name of pushers.keys()) if (projectOf(name) === project) seen.set(name, pushers.get(name)!.sub);
      }
    }
    if (!running) return;
    for (const [name, pusher] of pushers) {
      const sub = seen.get(name);
      if (sub === undefined) {
        pushers.delete(name);
        void pusher.stop();
        logger.info({ subscription: name }, "push: stopped (push config removed or subscription gone)");
      } else {
        pusher.update(sub);
      }
    }
    for (const [name, sub] of seen) {
      if (pushers.has(name)) continue;
      const pusher = new Pusher(sub, engine, logger, token, () => {
        if (pushers.get(name) === pusher) pushers.delete(name);
      });
      pushers.set(name, pusher);
      logger.info({ subscription: name, endpoint: sub.pushConfig?.pushEndpoint }, "push: started");
    }
  };

  const scan = (): Promise<void> => {
    if (scanning !== null) {
      rescan = true;
      return scanning;
    }
    scanning = (async () => {
      do {
        rescan = false;
        await scanOnce();
      } while (rescan && running);
    })()
      .catch((error: unknown) => logger.warn({ err: error }, "push: scan failed"))
      .finally(() => {
        scanning = null;
      });
    return scanning;
  };

  const schedule = () => {
    if (!running) return;
    timer = setTimeout(() => {
      void scan().finally(schedule);
    }, scanIntervalMs);
    timer.unref();
  };

  const watch = (resourceName: string) => {
    const project = projectOf(resourceName);
    if (project === null || projects.has(project)) return;
    projects.add(project);
    if (running) void scan();
  };

  return {
    start() {
      if (running) return;
      running = true;
      void scan();
      schedule();
    },
    async stop() {
      running = false;
      if (timer !== null) clearTimeout(timer);
      timer = null;
      await scanning;
      const stopping = [...pushers.values()].map((pusher) => pusher.stop());
      pushers.clear();
      await Promise.all(stopping);
    },
    watch,
  };
}

/** `projects/{project}/...` → project; null for anything else. */
function projectOf(resourceName: string): string | null {
  const match = /^projects\/([^/]+)\//.exec(resourceName);
  return match === null ? null : match[1]!;
}

type TokenSource = (oidc: NonNullable<PushConfig["oidcToken"]>, endpoint: string) => Promise<string>;

/**
 * Pushes one subscription. Flow control: at most {@link PUSH_MAX_OUTSTANDING_MESSAGES} pushes in flight. After a
 * failure the window drops to 1 and the next push waits a backoff that doubles from 100 ms up to 60 s; the first
 * success restores the full window and clears the backoff.
 */
class Pusher {
  private readonly controller = new AbortController();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly loop: Promise<void>;
  private window = PUSH_MAX_OUTSTANDING_MESSAGES;
  private backoffMs = 0;
  private notBeforeMs = 0;
  private wake: (() => void) | null = null;
  private stream: ReturnType<Engine["openStream"]> | null = null;

  constructor(
    public sub: Subscription,
    private readonly engine: Engine,
    private readonly logger: Pick<Logger, "debug" | "info" | "warn">,
    private readonly token: TokenSource,
    onEnd: () => void,
  ) {
    this.loop = this.run()
      .catch((error: unknown) => {
        if (!this.controller.signal.aborted)
          this.logger.warn({ err: error, subscription: sub.name }, "push: stream ended");
      })
      .finally(onEnd);
  }

  /** Applies a changed subscription (endpoint, auth, ack deadline) to later pushes. */
  update(sub: Subscription): void {
    if (sub.ackDeadlineSeconds !== this.sub.ackDeadlineSeconds) this.stream?.setAckDeadline(sub.ackDeadlineSeconds);
    this.sub = sub;
  }

  async stop(): Promise<void> {
    this.controller.abort();
    this.notify();
    await this.loop;
    await Promise.allSettled([...this.inFlight]);
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private async run(): Promise<void> {
    const signal = this.controller.signal;
    const stream = this.engine.openStream(this.sub.name, {
      ackDeadlineSeconds: this.sub.ackDeadlineSeconds,
      maxOutstandingMessages: PUSH_MAX_OUTSTANDING_MESSAGES,
      maxOutstandingBytes: 0,
      clientId: "push",
      signal,
    });
    this.stream = stream;
    for await (const batch of stream) {
      for (const received of batch) {
        await this.slot();
        if (signal.aborted) return;
        const delivery = this.deliver(received).finally(() => {
          this.inFlight.delete(delivery);
          this.notify();
        });
        this.inFlight.add(delivery);
      }
      if (signal.aborted) return;
    }
  }

  /** Waits until a push may start: a free slot in the window and the backoff elapsed. */
  private async slot(): Promise<void> {
    const signal = this.controller.signal;
    while (!signal.aborted) {
      const waitMs = this.notBeforeMs - Date.now();
      if (this.inFlight.size < this.window && waitMs <= 0) return;
      await new Promise<void>((resolve) => {
        const timer = waitMs > 0 ? setTimeout(resolve, waitMs) : null;
        this.wake = () => {
          if (timer !== null) clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  private async deliver(received: ReceivedMessage): Promise<void> {
    const sub = this.sub;
    const push = sub.pushConfig;
    const signal = this.controller.signal;
    if (push === null) return;
    let outcome: string;
    const deadline = createDeadlineSignal(signal, sub.ackDeadlineSeconds * 1000);
    try {
      const request = await this.request(sub, push, received);
      const response = await fetch(push.pushEndpoint, {
        method: "POST",
        ...request,
        signal: deadline.signal,
        redirect: "manual",
      });
      await response.body?.cancel().catch(() => undefined);
      if (PUSH_ACK_STATUSES.has(response.status)) {
        this.succeeded();
        await this.engine.acknowledge(sub.name, [received.ackId]);
        return;
      }
      outcome = `HTTP ${response.status}`;
    } catch (error) {
      if (signal.aborted) return; // stopping: the lease simply expires
      outcome = error instanceof Error ? error.message : String(error);
    } finally {
      deadline.dispose();
    }
    if (signal.aborted) return;
    this.failed();
    this.logger.debug(
      { subscription: sub.name, messageId: received.message.messageId, outcome, backoffMs: this.backoffMs },
      "push: delivery failed; nacked",
    );
    await this.engine.modifyAckDeadline(sub.name, [received.ackId], 0).catch((error: unknown) => {
      this.logger.debug({ err: error, subscription: sub.name }, "push: nack failed");
    });
  }

  private succeeded(): void {
    if (this.backoffMs === 0) return;
    this.backoffMs = 0;
    this.notBeforeMs = 0;
    this.window = PUSH_MAX_OUTSTANDING_MESSAGES;
    this.notify();
  }

  private failed(): void {
    this.backoffMs = Math.min(PUSH_BACKOFF_MAX_MS, Math.max(PUSH_BACKOFF_MIN_MS, this.backoffMs * 2));
    this.notBeforeMs = Date.now() + this.backoffMs;
    this.window = 1;
  }

  private async request(
    sub: Subscription,
    push: PushConfig,
    received: ReceivedMessage,
  ): Promise<{ headers: Record<string, string>; body: string | Uint8Array<ArrayBuffer> }> {
    const message = received.message;
    const headers: Record<string, string> = {};
    if (push.oidcToken !== null)
      headers.authorization = `Bearer ${await this.token(push.oidcToken, push.pushEndpoint)}`;
    const publishTime = new Date(message.publishTimeMs).toISOString();
    if (push.noWrapper) {
      headers["content-type"] = "application/octet-stream";
      // Pub/Sub's no_wrapper: the body alone, unless write_metadata adds the metadata and the attributes as headers.
      if (push.writeMetadata === true) {
        for (const [key, value] of Object.entries(message.attributes)) {
          const name = key.toLowerCase();
          if (HEADER_TOKEN.test(key) && !RESERVED_HEADERS.has(name) && !name.startsWith("x-goog-pubsub-")) {
            headers[name] = HEADER_VALUE.test(value) ? value : encodeURIComponent(value);
          }
        }
        headers["x-goog-pubsub-subscription-name"] = sub.name;
        headers["x-goog-pubsub-message-id"] = message.messageId;
        headers["x-goog-pubsub-publish-time"] = publishTime;
        if (message.orderingKey !== "") headers["x-goog-pubsub-ordering-key"] = encodeURIComponent(message.orderingKey);
        if (sub.deadLetterPolicy !== null) headers["x-goog-pubsub-delivery-attempt"] = String(received.deliveryAttempt);
      }
      return { headers, body: new Uint8Array(message.data) };
    }
    headers["content-type"] = "application/json";
    const body = {
      message: {
        data: Buffer.from(message.data).toString("base64"),
        attributes: message.attributes,
        messageId: message.messageId,
        message_id: message.messageId,
        publishTime,
        publish_time: publishTime,
        ...(message.orderingKey === "" ? {} : { orderingKey: message.orderingKey }),
      },
      subscription: sub.name,
      ...(sub.deadLetterPolicy === null ? {} : { deliveryAttempt: received.deliveryAttempt }),
    };
    return { headers, body: JSON.stringify(body) };
  }
}

/** Attribute names usable in a header name (RFC 9110 token); others are left out of no-wrapper pushes. */
const HEADER_TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
/** Attribute values sent as they are; any other value (non-ASCII, control characters) goes percent-encoded. */
const HEADER_VALUE = /^[\t\x20-\x7e]*$/;
/**
 * Header names an attribute never sets: the ones this request sets itself and the ones that frame or route
 * HTTP (an attribute must not change how the request is delivered or authenticated).
 */
const RESERVED_HEADERS = new Set([
  "authorization",
  "connection",
  "content-encoding",
  "content-length",
  "content-type",
  "expect",
  "host",
  "keep-alive",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);
