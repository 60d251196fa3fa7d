// A connect HandlerContext that costs nothing until used: headers, the signal and context values are built on first access.
import type { IncomingHttpHeaders } from "node:http2";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { type ContextValues, createContextValues, type HandlerContext } from "@connectrpc/connect";

/**
 * The context a service implementation gets on the lean gRPC path. It behaves as connect's
 * `createHandlerContext()` (same fields, same signal semantics) but allocates the three `Headers`, the
 * `AbortController` and the shutdown link only when an implementation touches them: a unary call that
 * reads none of them (GetTopic, Publish, Acknowledge) pays for none.
 */
export class LeanHandlerContext implements HandlerContext {
  readonly requestMethod = "POST";
  readonly protocolName = "grpc";
  readonly service: DescService;
  private controller: AbortController | undefined;
  private abortReason: unknown;
  private aborted = false;
  private requestHeaders: Headers | undefined;
  private responseHeaders: Headers | undefined;
  private responseTrailers: Headers | undefined;
  private contextValues: ContextValues | undefined;
  /** Made with the signal: a call that never reads its signal allocates no listener. */
  private onShutdown: (() => void) | undefined;

  constructor(
    readonly method: DescMethod,
    private readonly headers: IncomingHttpHeaders,
    private readonly deadlineAt: number | undefined,
    private readonly shutdownSignal: AbortSignal,
  ) {
    this.service = method.parent;
  }

  /** Aborts when the client cancels, the deadline passes, the server shuts down, or the call ends. */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.abortReason);
      else if (this.shutdownSignal.aborted) this.abort(this.shutdownSignal.reason);
      else {
        this.onShutdown = () => this.abort(this.shutdownSignal.reason);
        this.shutdownSignal.addEventListener("abort", this.onShutdown, { once: true });
      }
    }
    return this.controller.signal;
  }

  timeoutMs(): number | undefined {
    return this.deadlineAt === undefined ? undefined : this.deadlineAt - Date.now();
  }

  get url(): string {
    const authority = this.headers[":authority"] ?? this.headers.host ?? "localhost";
    return `${this.headers[":scheme"] ?? "http"}://${authority}${this.headers[":path"] ?? "/"}`;
  }

  /** The request's metadata as connect-node presents it: every header but the HTTP/2 pseudo-headers. */
  get requestHeader(): Headers {
    if (this.requestHeaders === undefined) {
      const headers = new Headers();
      for (const [name, value] of Object.entries(this.headers)) {
        if (name.startsWith(":") || value === undefined) continue;
        if (Array.isArray(value)) for (const item of value) headers.append(name, item);
        else headers.set(name, value);
      }
      this.requestHeaders = headers;
    }
    return this.requestHeaders;
  }

  get responseHeader(): Headers {
    this.responseHeaders ??= new Headers();
    return this.responseHeaders;
  }

  get responseTrailer(): Headers {
    this.responseTrailers ??= new Headers();
    return this.responseTrailers;
  }

  get values(): ContextValues {
    this.contextValues ??= createContextValues();
    return this.contextValues;
  }

  /** Response headers an implementation set, or undefined when it set none. */
  peekResponseHeader(): Headers | undefined {
    return this.responseHeaders;
  }

  /** Response trailers an implementation set, or undefined when it set none. */
  peekResponseTrailer(): Headers | undefined {
    return this.responseTrailers;
  }

  /** Aborts the signal once (later calls keep the first reason) and unlinks the shutdown signal. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.abortReason = reason;
    if (this.controller !== undefined) {
      if (this.onShutdown !== undefined) this.shutdownSignal.removeEventListener("abort", this.onShutdown);
      this.controller.abort(reason);
    }
  }
}
