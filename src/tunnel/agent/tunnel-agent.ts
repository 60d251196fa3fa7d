// The tunnel agent: keeps a registered session to the server (reconnect, rotate, drain) and serves requests through its upstreams.
import { pino } from "pino";
import type { StreamgateError } from "../../errors/index.js";
import type { Logger } from "../../observability/index.js";
import { type AgentRules, parseAgentRules, type RulesWatcher, watchRulesFile } from "../rules/index.js";
import { type AddressStatus, createUpstreamForwarder } from "../upstream/index.js";
import { AgentConnection, isRefusal, type SessionEnd } from "./agent-connection.js";
import { backoffDelayMs, resolveTunnelAgentOptions, type TunnelAgentOptions } from "./agent-options.js";

/** Backoff attempt used after a refusal of an agent that had registered: the cap (reconnect.maxMs). */
const REFUSED_ATTEMPT = 30;

/** Lifecycle of an agent. */
export const AgentState = {
  /** Dialing or registering (first time or after a loss). */
  connecting: "connecting",
  /** A registered session takes requests. */
  connected: "connected",
  /** drain() was called: live requests finish, nothing new is taken. */
  draining: "draining",
  /** Stopped by drain()/close(), or refused by the server at its first registration. */
  closed: "closed",
} as const;
export type AgentState = (typeof AgentState)[keyof typeof AgentState];

/** What `status()` reports. */
export interface TunnelAgentStatus {
  state: AgentState;
  clientId: string;
  group: string;
  /** Open sessions: the current one, plus ones finishing after a rotation. */
  sessions: { sessionId: string; inFlight: number; standby: number; draining: boolean; registeredAtMs: number }[];
  inFlight: number;
  /** Sessions registered since start (1 + reconnects and rotations). */
  registrations: number;
  /** Why the last connection attempt or session failed, if one did. */
  lastError: string | null;
  upstreams: AddressStatus[];
}

export interface TunnelAgent {
  /**
   * Starts connecting; resolves once the first session is registered (retrying with backoff until then),
   * rejects when the server refuses the agent (bad token, group not allowed): retrying cannot help. A refusal
   * after a session had registered (the server's rules changed) is retried at the longest backoff instead.
   */
  start(): Promise<void>;
  /** Takes no new requests (tells the server), lets live ones finish (bounded by drainTimeoutMs), then closes. */
  drain(): Promise<void>;
  /** Closes at once: live requests are cut. */
  close(): Promise<void>;
  status(): TunnelAgentStatus;
  /** Settles when the agent stops: resolves after drain()/close(), rejects with the refusal when refused at start. */
  readonly done: Promise<void>;
}

export function createTunnelAgent(input: TunnelAgentOptions): TunnelAgent {
  const options = resolveTunnelAgentOptions(input);
  const logger: Logger = (options.logger ?? pino({ level: "silent" })).child({
    component: "tunnel-agent",
    client_id: options.clientId,
    group: options.group,
  });
  const forwarder = createUpstreamForwarder({
    maxMessageBytes: options.maxMessageBytes,
    tls: options.upstreamTls,
    onHealthChange: (statuses) => {
      logger.info(
        {
          upstreams: statuses.map((status) => `${status.upstream} ${status.address} ${status.serving ? "up" : "down"}`),
        },
        "upstream health changed",
      );
      for (const connection of connections) connection.reportHealth(statuses);
    },
  });
  let watcher: RulesWatcher<AgentRules> | undefined;
  let rules: AgentRules;
  if (options.rulesPath !== undefined) {
    watcher = watchRulesFile(options.rulesPath, parseAgentRules, {
      onChange(next) {
        rules = next;
        forwarder.setUpstreams(next.upstreams);
        logger.info({ routes: next.routes.length, upstreams: next.upstreams.length }, "agent rules reloaded");
      },
      onError(error) {
        logger.error({ err: error }, `agent rules not reloaded, the previous ones stay: ${error.message}`);
      },
    });
    rules = watcher.current();
  } else {
    rules = options.rules!;
  }
  forwarder.setUpstreams(rules.upstreams);

  const connections = new Set<AgentConnection>();
  const context = { rules: () => rules, forwarder, logger };
  let state: AgentState = AgentState.connecting;
  let started = false;
  let stopping = false;
  let registrations = 0;
  let lastError: string | null = null;
  let nextId = 1;
  let wakeSleep: (() => void) | undefined;
  let resolveStarted!: () => void;
  let rejectStarted!: (error: Error) => void;
  const firstRegistration = new Promise<void>((resolve, reject) => {
    resolveStarted = resolve;
    rejectStarted = reject;
  });
  firstRegistration.catch(() => undefined);
  let resolveDone!: () => void;
  let rejectDone!: (error: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  done.catch(() => undefined);

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wakeSleep = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  /** Keeps one registered session: reconnects after a loss, opens a new one before letting a rotated one go. */
  async function maintain(): Promise<void> {
    let attempt = 0;
    while (!stopping) {
      const connection = new AgentConnection(nextId++, options, context, () => forwarder.health());
      connections.add(connection);
      void connection.gone.then(() => connections.delete(connection));
      try {
        const registered = await connection.open();
        registrations++;
        attempt = 0;
        state = stopping ? state : AgentState.connected;
        logger.info(
          { session: registered.sessionId.slice(0, 8), standby: registered.standbyStreams, server: options.serverUrl },
          "tunnel agent registered",
        );
        resolveStarted();
      } catch (error) {
        connections.delete(connection);
        if (stopping) return;
        const failure = error as StreamgateError;
        lastError = failure.message;
        state = AgentState.connecting;
        if (isRefusal(failure)) {
          // Refused before it ever registered: the token, group or registration is wrong; retrying cannot help.
          // Refused after it had registered: the server's rules changed under a running agent (a token or group
          // taken away, maybe by mistake); it keeps trying, at the longest backoff, so a fixed reload brings it back.
          if (registrations === 0) {
            logger.error({ reason: failure.reason, code: failure.code }, failure.message);
            fail(failure);
            return;
          }
          const delayMs = backoffDelayMs(REFUSED_ATTEMPT, options.reconnect);
          logger.error(
            { reason: failure.reason, code: failure.code, delay_ms: delayMs },
            `${failure.message}; it was accepted before (the server's rules changed?), retrying`,
          );
          await sleep(delayMs);
          continue;
        }
        const delayMs = backoffDelayMs(attempt++, options.reconnect);
        logger.warn({ attempt, delay_ms: delayMs, reason: failure.message }, "tunnel agent reconnecting");
        await sleep(delayMs);
        continue;
      }
      // Older sessions (rotation, server drain) finish their requests; this one takes the new ones.
      for (const previous of connections) {
        if (previous !== connection) void previous.drain("replaced by a new session", options.drainTimeoutMs);
      }
      const end: SessionEnd = await connection.ended;
      if (stopping) return;
      if (end.kind === "lost") {
        lastError = end.error.message;
        state = AgentState.connecting;
        connection.destroy();
        const delayMs = backoffDelayMs(attempt++, options.reconnect);
        logger.warn({ attempt, delay_ms: delayMs, reason: end.error.message }, "tunnel agent reconnecting");
        await sleep(delayMs);
      } else {
        logger.info({ reason: end.reason, kind: end.kind }, "tunnel agent opens a new session (make-before-break)");
      }
    }
  }

  function fail(error: Error): void {
    stopping = true;
    state = AgentState.closed;
    for (const connection of connections) connection.destroy();
    forwarder.close();
    watcher?.close();
    rejectStarted(error);
    rejectDone(error);
  }

  async function stop(graceful: boolean): Promise<void> {
    if (state === AgentState.closed) return done.catch(() => undefined);
    stopping = true;
    state = graceful ? AgentState.draining : AgentState.closed;
    wakeSleep?.();
    if (graceful) {
      await Promise.all([...connections].map((connection) => connection.drain("agent drains", options.drainTimeoutMs)));
    } else {
      for (const connection of connections) connection.destroy();
      await Promise.all([...connections].map((connection) => connection.gone));
    }
    state = AgentState.closed;
    forwarder.close();
    watcher?.close();
    rejectStarted(new Error("the agent stopped before it registered"));
    resolveDone();
  }

  return {
    start() {
      if (!started) {
        started = true;
        void maintain();
      }
      return firstRegistration;
    },
    drain: () => stop(true),
    close: () => stop(false),
    status() {
      const sessions = [...connections]
        .filter((connection) => connection.sessionId !== "")
        .map((connection) => ({
          sessionId: connection.sessionId,
          inFlight: connection.inFlight,
          standby: connection.standby,
          draining: connection.draining,
          registeredAtMs: connection.registeredAtMs,
        }));
      return {
        state,
        clientId: options.clientId,
        group: options.group,
        sessions,
        inFlight: sessions.reduce((sum, session) => sum + session.inFlight, 0),
        registrations,
        lastError,
        upstreams: forwarder.health(),
      };
    },
    done,
  };
}
