// Composition root: wires engine, Pub/Sub services, gRPC/REST transports and the listener; owns the lifecycle.
import { setMaxListeners } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { DescService } from "@bufbuild/protobuf";
import { Code as ConnectCode, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createAuth } from "../auth/index.js";
import { currentPrincipal, runAsPrincipal } from "../auth/principal-context.js";
import { isTokenPrincipal } from "../auth/token-principal.js";
import { GrpcPath, type ServerOptions } from "../config/index.js";
import type { Engine } from "../engines/engine.js";
import { createEngine } from "../engines/index.js";
import { Code, StreamgateError } from "../errors/index.js";
import { ChatService, file_chat_chat } from "../gen/chat/chat_pb.js";
import { file_google_iam_v1_iam_policy, IAMPolicy } from "../gen/google/iam/v1/iam_policy_pb.js";
import { file_google_pubsub_v1_pubsub, Publisher, Subscriber } from "../gen/google/pubsub/v1/pubsub_pb.js";
import { file_google_pubsub_v1_schema, SchemaService } from "../gen/google/pubsub/v1/schema_pb.js";
import { file_grpc_reflection_v1_reflection, ServerReflection } from "../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1Alpha } from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { file_health_v1_health, Health } from "../gen/health/v1/health_pb.js";
import { Events, file_streamgate_v1_events } from "../gen/streamgate/v1/events_pb.js";
import {
  type AnyRequest,
  type AnyResponse,
  connectionOrigin,
  createListener,
  createRouter,
  parseTrustedProxies,
  type RequestHandler,
  type Route,
  refuse,
  requestClientAddress,
  type StreamRoute,
  sendError,
  sendJson,
  wireProtocolOf,
} from "../http/index.js";
import {
  anonymousPrincipal,
  createLimits,
  LIMITS_INTERCEPTOR,
  refusePlainSocket,
  tooManyConnectionsError,
} from "../limits/index.js";
import {
  createLogger,
  createServerMetrics,
  createStreamTelemetry,
  type Logger,
  liveConnections,
  METRICS_INTERCEPTOR,
  metricsInterceptor,
  ObservedTransport,
  runWithTraceContext,
  traceContextFromHeaders,
  traceLogFields,
} from "../observability/index.js";
import { createStreamHub } from "../streams/index.js";
import { createChatService } from "../transports/chat/index.js";
import { createDashboardHandler, summarizeTunnelRules } from "../transports/dashboard/index.js";
import { createEventsService } from "../transports/events/index.js";
import {
  createHealthService,
  createReflection,
  errorInterceptor,
  toConnectError,
  useConnectDecodeErrorStatus,
  useSpecGrpcMessageEncoding,
} from "../transports/grpc/index.js";
import { createLeanGrpcHandler, LEAN_GRPC_CONTENT_TYPE, type LeanGrpcService } from "../transports/grpc/lean/index.js";
import {
  createIamPolicyService,
  createPublisherService,
  createSchemaService,
  createSubscriberService,
  defaultPubsubLimits,
} from "../transports/pubsub/index.js";
import { createPushSigner, createPushWorker, pushObservation } from "../transports/push/index.js";
import { createRestRoutes } from "../transports/rest/index.js";
import { createEventsRoute } from "../transports/sse/index.js";
import { createWebSocketEndpoint, WEBSOCKET_PATH } from "../transports/ws/index.js";
import {
  createTunnelServer,
  TUNNEL_AGENTS_PATH,
  TUNNEL_MATCH_PATH,
  TUNNEL_SERVICE_PREFIX,
  type TunnelServer,
} from "../tunnel/server/index.js";
import { createEngineChain } from "./engine-chain.js";

/** A running (or ready to run) streamgate server. */
/** "compiled" when this runs from dist/ (npm run build), "sources" when from src/ through tsx. */
const RUNNING_CODE = import.meta.url.endsWith(".ts") ? "sources" : "compiled";

export interface StreamgateServer {
  /**
   * The engine as background work sees it: through the chain's metrics link only (publishes counted and traced),
   * without authorization, limits or push observation.
   */
  readonly engine: Engine;
  /** The engine itself, below every interceptor (engine-specific calls, such as maintenance in tests, go here). */
  readonly baseEngine: Engine;
  readonly options: ServerOptions;
  /** The tunnel server (agent endpoint, entries), or null without `tunnelRulesPath`. */
  readonly tunnel: TunnelServer | null;
  /** Binds the port; resolves to the bound address. */
  listen(): Promise<{ host: string; port: number; url: string }>;
  /** Stops accepting, ends streams with UNAVAILABLE, waits up to `graceMs` for connections to finish, then closes. */
  drain(graceMs: number): Promise<void>;
  /** Closes at once: connections are cut, the engine is closed. */
  close(): Promise<void>;
  /** Open client connections (TCP). */
  connections(): number;
}

/** Optional collaborators, for tests and embedding. */
export interface ServerDependencies {
  engine?: Engine;
  logger?: Logger;
  /** Time between the dashboard's history samples. Default 10 000 ms; tests shorten it so charts fill in seconds. */
  dashboardSampleIntervalMs?: number;
}

/** Creates the server; nothing listens until `listen()`. */
export async function createServer(
  options: ServerOptions,
  dependencies: ServerDependencies = {},
): Promise<StreamgateServer> {
  const logger = dependencies.logger ?? createLogger(options.logLevel, options.logFormat);
  // Startup policy first (a reachable host without keys refuses to start), so a refusal opens no engine.
  // Warnings found while starting (auth off) are logged once the port is bound: a start that fails says only why.
  let startupWarnings: string[] | null = [];
  const auth = createAuth(options, {
    warn: (message) => (startupWarnings === null ? logger.warn(message) : startupWarnings.push(message)),
    info: (message) => logger.info(message),
    onFailure: (transport, reason, clientAddress) => {
      metrics.authFailures.inc({ transport, reason });
      // Refused at the edge: who tried (the client's address, not the proxy's). Debug: scanners make many.
      if (clientAddress !== undefined)
        logger.debug({ transport, reason, remoteAddress: clientAddress }, "request refused by auth");
    },
  });
  const rawEngine = dependencies.engine ?? (await createEngine(options));
  // `listener` and `hub` are assigned below, before any scrape can happen.
  const metrics = createServerMetrics({
    engine: rawEngine,
    hubStats: () => hub.stats(),
    tcpConnections: () => listener.connections(),
  });
  // Limits (publish rate, subscriptions, streams and connections) hold once for every transport.
  const principalLimits = createLimits(options, { onLimited: (limit) => metrics.rateLimited.inc({ limit }) });
  // The engine chain (engine-chain.ts): authorization → limits → push → metrics → engine. The transports call
  // through all of it; background work runs as no caller and enters lower: the hub at limits, the push worker at metrics.
  const chain = createEngineChain(rawEngine, {
    authorization: auth.interceptor,
    limits: principalLimits.interceptor,
    // The push worker (created below) learns projects from the calls the services make.
    push: pushObservation((resourceName) => pushWorker.watch(resourceName)),
    metrics: metricsInterceptor(metrics, logger),
  });
  const engine = chain.enteringAt(METRICS_INTERCEPTOR);
  const servedEngine = chain.enteringAt(LIMITS_INTERCEPTOR);
  const transportEngine = chain.engine;
  // Each transport gets the hub through its own observer: stream open/close log lines and stream metrics.
  const telemetry = createStreamTelemetry(logger, metrics, () => shutdown.signal.aborted);
  const shutdown = new AbortController();
  // Every live call listens on the shutdown signal; thousands of streams are normal, not a leak.
  setMaxListeners(0, shutdown.signal);
  let draining = false;
  let closed = false;
  const statusWaiters = new Set<() => void>();
  const notifyStatus = () => {
    for (const wake of statusWaiters) wake();
    statusWaiters.clear();
  };

  // Proxies whose PROXY headers and Forwarded / X-Forwarded-For are believed (resolveServerOptions checked the list).
  const trustedProxies = parseTrustedProxies(options.trustedProxies);
  const proxyProtocolRejected = (listener: string) => (reason: string) =>
    metrics.proxyProtocolRejected.inc({ listener, reason });

  // Push delivery: the worker scans the projects the engine lists, and those the chain's push link reports.
  const pushIssuer = "streamgate";
  const pushSigner = createPushSigner({ issuer: pushIssuer });
  const pushWorker = createPushWorker({ engine, signer: pushSigner, logger, issuer: pushIssuer });
  pushWorker.start();

  const limits = { ...defaultPubsubLimits, maxMessageBytes: options.maxMessageBytes };
  const publisher = createPublisherService(transportEngine, limits);
  const subscriber = createSubscriberService(transportEngine, limits);
  const schemaService = createSchemaService(transportEngine);
  const iamPolicy = createIamPolicyService(transportEngine);
  const hub = principalLimits.limitHub(
    createStreamHub({
      engine: servedEngine,
      heartbeatMs: options.heartbeatMs,
      maxBufferBytes: options.maxStreamBufferBytes,
    }),
  );
  const transportHub = auth.hub(hub, servedEngine);
  const live = {
    engine: transportEngine,
    hub: transportHub,
    heartbeatMs: options.heartbeatMs,
    maxMessageBytes: options.maxMessageBytes,
  };
  const events = createEventsService({ ...live, hub: telemetry.observe(transportHub, ObservedTransport.grpc) });
  const chat = createChatService({ ...live, hub: telemetry.observe(transportHub, ObservedTransport.chat) });
  const served: DescService[] = [
    Publisher,
    Subscriber,
    SchemaService,
    IAMPolicy,
    Events,
    ChatService,
    Health,
    ServerReflection,
    ServerReflectionV1Alpha,
  ];
  const serviceNames = () => served.map((service) => service.typeName);
  const serving = async () => !draining && !closed && (await engine.ready().catch(() => false));
  const health = createHealthService({
    services: serviceNames,
    serving,
    changed: (signal) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 5_000);
        const wake = () => {
          clearTimeout(timer);
          resolve();
        };
        statusWaiters.add(wake);
        signal.addEventListener("abort", wake, { once: true });
      }),
  });
  const reflection = createReflection(
    [
      file_google_pubsub_v1_pubsub,
      file_google_pubsub_v1_schema,
      file_google_iam_v1_iam_policy,
      file_streamgate_v1_events,
      file_chat_chat,
      file_health_v1_health,
      file_grpc_reflection_v1_reflection,
    ],
    serviceNames,
  );

  // One list for both gRPC paths (connect's router and the lean handler): the same implementations.
  const services: LeanGrpcService[] = [
    { descriptor: Publisher, implementation: publisher as never },
    { descriptor: Subscriber, implementation: subscriber as never },
    { descriptor: SchemaService, implementation: schemaService as never },
    { descriptor: IAMPolicy, implementation: iamPolicy as never },
    { descriptor: Events, implementation: events as never },
    { descriptor: ChatService, implementation: chat as never },
    { descriptor: Health, implementation: health as never },
    { descriptor: ServerReflection, implementation: reflection.v1 as never },
    { descriptor: ServerReflectionV1Alpha, implementation: reflection.v1alpha as never },
  ];
  const routes = (router: ConnectRouter) => {
    for (const { descriptor, implementation } of services) router.service(descriptor, implementation);
  };
  const restRoutes = createRestRoutes({
    services: [
      { descriptor: Publisher, implementation: publisher as never },
      { descriptor: Subscriber, implementation: subscriber as never },
      { descriptor: SchemaService, implementation: schemaService as never },
      { descriptor: IAMPolicy, implementation: iamPolicy as never },
    ],
    maxRequestBytes: options.maxRequestBytes,
    shutdownSignal: shutdown.signal,
  });
  // Live streams over plain HTTP: SSE / long poll on GET …/topics/{t}/events, WebSocket on /v1/ws.
  const eventsRoute = createEventsRoute({
    hub: telemetry.observe(transportHub, ObservedTransport.sse),
    longPollHub: telemetry.observe(transportHub, ObservedTransport.longPoll),
    engine: transportEngine,
    shutdownSignal: shutdown.signal,
    maxBufferBytes: options.maxStreamBufferBytes,
  });
  const webSockets = createWebSocketEndpoint({
    hub: telemetry.observe(transportHub, ObservedTransport.websocket),
    publish: (topic, messages) => transportEngine.publish(topic, messages),
    heartbeatMs: options.heartbeatMs,
    maxPayloadBytes: options.maxWebSocketPayloadBytes,
    maxBufferBytes: options.maxStreamBufferBytes,
  });

  // The dashboard: web/ at `/` and GET /v1/dashboard/overview (`listener` is assigned below, before any request).
  // The tunnel: agents call /streamgate.tunnel.v1.Tunnel/* on this port; the entries have their own ports.
  const tunnel: TunnelServer | null =
    options.tunnelRulesPath === null
      ? null
      : createTunnelServer({
          rulesPath: options.tunnelRulesPath,
          host: options.host,
          httpPort: options.tunnelHttpPort,
          grpcPort: options.tunnelGrpcPort,
          tls:
            options.tlsCertPath !== null && options.tlsKeyPath !== null
              ? {
                  certPath: options.tlsCertPath,
                  keyPath: options.tlsKeyPath,
                  clientCaPath: null,
                  clientCertOptional: false,
                }
              : null,
          maxMessageBytes: options.tunnelMaxMessageBytes,
          rotateAfterMs: options.tunnelRotateAfterMs,
          heartbeatIntervalMs: options.tunnelHeartbeatMs,
          standbyStreams: options.tunnelStandbyStreams,
          pingIntervalMs: options.heartbeatMs,
          logger: logger.child({ component: "tunnel" }),
          metricsRegistry: metrics.registry,
          // The dry run and the agents list show the routing and the fleet: admin on every resource, as the dashboard.
          trustedProxies,
          ...(options.tunnelProxyProtocol
            ? {
                proxyProtocol: {
                  timeoutMs: options.proxyProtocolTimeoutMs,
                  onRejected: (entry: string, reason: string) => proxyProtocolRejected(entry)(reason),
                },
              }
            : {}),
          authorizeAdmin: () => {
            const principal = currentPrincipal();
            return principal !== undefined && isTokenPrincipal(principal) && !principal.grants.globalAdmin
              ? new StreamgateError(
                  Code.PERMISSION_DENIED,
                  'the tunnel admin endpoints need a token with admin on every resource ("admin": ["*"])',
                  {
                    reason: "PERMISSION_DENIED",
                  },
                )
              : null;
          },
        });

  const dashboard = createDashboardHandler({
    tunnel: () =>
      tunnel === null
        ? null
        : { agents: tunnel.agents(), stats: tunnel.stats(), rules: summarizeTunnelRules(tunnel.rules()) },
    engine: servedEngine,
    sampleIntervalMs: dependencies.dashboardSampleIntervalMs,
    streamStats: () => hub.stats(),
    connections: () => ({ ...liveConnections.counts(), http: listener.connections() }),
  });

  // The one route table of the plain-HTTP endpoints (src/http/router.ts): health, readiness, metrics, JWKS, the
  // tunnel admin, the dashboard, SSE and long poll, Pub/Sub REST (with its HTML 404 fallback under /v1/projects/).
  const getOnly = (path: string, handle: Route["handle"]): Route => ({ methods: ["GET"], path, handle });
  const router = createRouter([
    getOnly("/healthz", (_request, response) => sendJson(response, 200, { status: "ok" })),
    getOnly("/readyz", async (_request, response) => {
      const ready = await serving();
      sendJson(response, ready ? 200 : 503, { status: ready ? "ready" : draining ? "draining" : "not ready" });
    }),
    getOnly("/metrics", async (_request, response) => {
      const text = await metrics.scrape();
      response.writeHead(200, { "content-type": metrics.contentType, "cache-control": "no-store" });
      response.end(text);
    }),
    getOnly("/.well-known/jwks.json", async (_request, response) => sendJson(response, 200, await pushSigner.jwks())),
    ...(tunnel === null
      ? []
      : [TUNNEL_AGENTS_PATH, TUNNEL_MATCH_PATH].map((path) =>
          getOnly(path, async (request, response) => {
            await tunnel.handleAdmin(request, response, path);
          }),
        )),
    ...dashboard.routes,
    eventsRoute,
    ...restRoutes,
  ]);

  const fallback = (request: AnyRequest, response: AnyResponse) => {
    void (async () => {
      const path = (request.url ?? "/").split("?")[0]!;
      if (draining) response.setHeader("connection", "close");
      if (wireProtocolOf(request.headers).startsWith("grpc")) {
        // An RPC this server does not serve: a gRPC trailers-only answer, never an HTML or JSON page.
        refuse(
          { request, response },
          new StreamgateError(Code.UNIMPLEMENTED, `unknown service or method ${path}`, { reason: "UNKNOWN_METHOD" }),
        );
        return;
      }
      const found = router.match(request.method ?? "GET", path);
      if (found.kind === "route") await found.route.handle(request, response, found.params);
      else if (found.kind === "method") {
        response.setHeader("allow", found.allow.join(", "));
        refuse(
          { request, response },
          new StreamgateError(
            Code.UNIMPLEMENTED,
            `method ${request.method} is not allowed on ${path}; allowed: ${found.allow.join(", ")}`,
            { reason: "METHOD_NOT_ALLOWED" },
          ),
        );
      } else {
        refuse(
          { request, response },
          new StreamgateError(Code.NOT_FOUND, `no route for ${request.method} ${path}`, { reason: "ROUTE_NOT_FOUND" }),
        );
      }
    })().catch((error: unknown) => {
      logger.error({ err: error, ...traceLogFields() }, "request handler failed");
      sendError(response, error);
    });
  };

  const connectHandler = connectNodeAdapter({
    routes,
    fallback,
    interceptors: [errorInterceptor],
    shutdownSignal: shutdown.signal,
    readMaxBytes: options.maxRequestBytes,
    writeMaxBytes: options.maxRequestBytes,
    jsonOptions: { ignoreUnknownFields: false },
  });

  // Every request runs as a principal, the key of the per-principal limits. Auth establishes it (its
  // runAsPrincipal must wrap this edge so the stream count below sees the token's subject); without
  // one, each client address is its own anonymous principal.
  // The address is the client's (PROXY header, or a trusted proxy's forwarding headers, else the TCP peer).
  const asPrincipal = <T>(request: AnyRequest | IncomingMessage, work: () => T): T =>
    currentPrincipal() === undefined ? runAsPrincipal(anonymousPrincipal(requestClientAddress(request)), work) : work();
  // Long-lived calls (streaming RPCs of any protocol, SSE and long poll) count against the principal's streams.
  const streamingPaths = new Set(
    served.flatMap((service) =>
      service.methods
        .filter((method) => method.methodKind !== "unary")
        .map((method) => `/${service.typeName}/${method.name}`),
    ),
  );
  const isLongLived = (request: AnyRequest, path: string) =>
    streamingPaths.has(path) ||
    (request.method === "GET" && /^\/v1\/projects\/[^/]+\/topics\/[^/]+\/events$/.test(path));
  const edge =
    (next: RequestHandler): RequestHandler =>
    (request, response) =>
      asPrincipal(request, () => {
        const path = (request.url ?? "/").split("?")[0]!;
        if (isLongLived(request, path)) {
          let release: () => void;
          try {
            release = principalLimits.admitStream();
          } catch (error) {
            refuse({ request, response }, error);
            return;
          }
          response.once("close", release);
        }
        next(request, response);
      });
  const upgradeWebSocket = (request: IncomingMessage, socket: Socket, head: Buffer) =>
    asPrincipal(request, () => {
      let release: () => void;
      try {
        release = principalLimits.admitStream();
      } catch (error) {
        refuse({ socket }, error);
        return;
      }
      socket.once("close", release);
      webSockets.handleUpgrade(request, socket, head);
    });
  // Binary gRPC over HTTP/2 on the lean path (when chosen); everything else (gRPC-Web, Connect, HTTP/1.1) on connect.
  const lean =
    options.grpcPath === GrpcPath.lean
      ? createLeanGrpcHandler({
          services,
          shutdownSignal: shutdown.signal,
          readMaxBytes: options.maxRequestBytes,
          writeMaxBytes: options.maxRequestBytes,
          mapError: toConnectError,
        })
      : null;
  // Its calls are taken as raw HTTP/2 streams, before node's compatibility layer (see StreamRoute), and go through
  // the same edge as every request: auth, trace context, the principal's stream limit.
  const leanRoute: StreamRoute | null =
    lean === null
      ? null
      : (stream, headers) => {
          const contentType = headers["content-type"];
          if (headers[":method"] !== "POST" || contentType === undefined || !LEAN_GRPC_CONTENT_TYPE.test(contentType))
            return false;
          const target = headers[":path"] ?? "/";
          const query = target.indexOf("?");
          const path = query < 0 ? target : target.slice(0, query);
          if (!lean.serves(path)) return false;
          auth.edge.handleStream(stream, headers, () =>
            runWithTraceContext(traceContextFromHeaders(headers), () => {
              if (streamingPaths.has(path)) {
                let release: () => void;
                try {
                  release = principalLimits.admitStream();
                } catch (error) {
                  refuse({ stream, headers }, error);
                  return;
                }
                stream.once("close", release);
              }
              lean.handle(stream, headers, path);
            }),
          );
          return true;
        };
  // The tunnel agents' calls (Control, Stream: mostly standbys held open) as raw HTTP/2 streams too, before auth as
  // in the handler below; CONNECT and `expect` requests stay with node's compatibility layer, which answers them.
  const tunnelRoute: StreamRoute | null =
    tunnel === null
      ? null
      : (stream, headers) => {
          if (headers[":method"] === "CONNECT" || headers.expect !== undefined) return false;
          if (!headers[":path"]?.startsWith(TUNNEL_SERVICE_PREFIX)) return false;
          tunnel.handleAgentCall(stream, headers);
          return true;
        };
  const handler = edge(connectHandler);
  // At accept (after the PROXY header, if any): past --max-connections-per-ip a plain connection gets an answer its
  // protocol understands, TLS a close. The count is per client address (the PROXY header's source, else the peer). A
  // connection whose client is itself a trusted proxy (an L7 proxy's pooled upstream connection, carrying many
  // clients' requests) is not counted, or every client behind it would share one budget.
  const admitConnection = (socket: Socket, tls: boolean) => {
    const origin = connectionOrigin(socket);
    if (trustedProxies.trusts(origin.address)) return true;
    const release = principalLimits.admitConnection(origin.address);
    if (release !== null) {
      socket.once("close", release);
      return true;
    }
    if (tls) socket.destroy();
    else {
      refusePlainSocket(socket, tooManyConnectionsError(options.maxConnectionsPerIp));
    }
    return false;
  };

  const listener = createListener({
    host: options.host,
    port: options.port,
    tls:
      options.tlsCertPath !== null && options.tlsKeyPath !== null
        ? {
            certPath: options.tlsCertPath,
            keyPath: options.tlsKeyPath,
            clientCaPath: options.tlsClientCaPath,
            clientCertOptional: options.tlsClientCertOptional,
          }
        : null,
    logger,
    handler: (request, response) => {
      if (tunnel !== null && request.url?.startsWith(TUNNEL_SERVICE_PREFIX)) {
        // Agents present their agent token (checked against the tunnel rules), not a user JWT: before auth.
        if ("stream" in request) tunnel.handleAgentCall(request.stream, request.headers);
        else {
          // (Only HTTP/1.1 gets here; the cast picks one writeHead overload of the request/response union.)
          (response as ServerResponse).writeHead(505, { "content-type": "application/json; charset=utf-8" });
          response.end(JSON.stringify({ error: { code: 505, message: "the tunnel service needs HTTP/2" } }));
        }
        return;
      }
      if (draining && "setHeader" in response && request.httpVersionMajor === 1)
        response.setHeader("connection", "close");
      const contentType = request.headers["content-type"];
      if (typeof contentType === "string" && /^application\/grpc(?!-web)/.test(contentType)) {
        useSpecGrpcMessageEncoding(response);
      } else if (typeof contentType === "string" && /^application\/proto\b/.test(contentType)) {
        useConnectDecodeErrorStatus(response);
      }
      // W3C trace context (HTTP header, or gRPC metadata, which travels as headers): publishes store it
      // as the `traceparent` attribute and log lines of this request carry its trace id.
      // Authenticated at the edge: the rest of the request runs as its principal (or is refused here).
      auth.edge.handle(request, response, () =>
        runWithTraceContext(traceContextFromHeaders(request.headers), () => handler(request, response)),
      );
    },
    streamRoutes: [tunnelRoute, leanRoute].filter((route) => route !== null),
    upgrade: (request, socket, head) => {
      const path = (request.url ?? "/").split("?")[0];
      if (path === WEBSOCKET_PATH && !draining && !closed)
        auth.edge.upgrade(request, socket, head, () => upgradeWebSocket(request, socket, head));
      else
        refuse(
          { socket },
          draining || closed
            ? new StreamgateError(Code.UNAVAILABLE, "server is draining; reconnect to another instance")
            : new StreamgateError(Code.NOT_FOUND, `no WebSocket endpoint at ${path}`, { reason: "ROUTE_NOT_FOUND" }),
        );
    },
    pingIntervalMs: options.heartbeatMs,
    maxHeaderBytes: 64 * 1024,
    maxStreamsPerConnection: options.maxStreamsPerConnection,
    admitConnection,
    trustedProxies,
    ...(options.proxyProtocol
      ? { proxyProtocol: { timeoutMs: options.proxyProtocolTimeoutMs, onRejected: proxyProtocolRejected("main") } }
      : {}),
  });

  const finish = async () => {
    if (closed) return;
    closed = true;
    if (!shutdown.signal.aborted) shutdown.abort(new ConnectError("server is shutting down", ConnectCode.Unavailable));
    webSockets.close();
    // The tunnel first: its agents are told (control calls end) while their connections still work;
    // destroying an HTTP/2 session with hundreds of open tunnel streams spun in Node's submitRstStream.
    await tunnel?.close();
    listener.destroy();
    await pushWorker.stop();
    await dashboard.close();
    await hub.close();
    await engine.close();
    logger.info("streamgate stopped");
    logger.flush();
  };

  return {
    engine,
    baseEngine: rawEngine,
    options,
    tunnel,
    async listen() {
      const address = await listener.listen();
      if (tunnel !== null) await tunnel.listen();
      for (const message of startupWarnings ?? []) logger.warn(message);
      startupWarnings = null;
      const scheme = options.tlsCertPath === null ? "http" : "https";
      const host = address.host.includes(":") ? `[${address.host}]` : address.host;
      const url = `${scheme}://${host === "0.0.0.0" || host === "[::]" ? "127.0.0.1" : host}:${address.port}`;
      logger.info(
        {
          host: address.host,
          port: address.port,
          engine: engine.kind,
          dataDir: options.dataDir,
          auth: auth.mode,
          code: RUNNING_CODE,
        },
        "streamgate listening",
      );
      return { ...address, url };
    },
    async drain(graceMs) {
      if (draining || closed) return;
      draining = true;
      notifyStatus();
      logger.info({ graceMs }, "draining: no new connections; streams told to reconnect");
      listener.stopAccepting();
      const tunnelDrained = tunnel?.drain(graceMs);
      shutdown.abort(new ConnectError("server is draining; reconnect to another instance", ConnectCode.Unavailable));
      webSockets.close();
      const deadline = Date.now() + graceMs;
      const idle = listener.idle();
      while (Date.now() < deadline && listener.connections() > 0) {
        listener.closeIdle();
        await Promise.race([idle, new Promise((resolve) => setTimeout(resolve, 50))]);
      }
      await tunnelDrained;
      await finish();
    },
    close: finish,
    connections: () => listener.connections(),
  };
}
