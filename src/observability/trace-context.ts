// W3C Trace Context (`traceparent`, `tracestate`): parse, format, derive a child, and carry the request's one.
import { AsyncLocalStorage } from "node:async_hooks";
import { randomFillSync } from "node:crypto";
import { MAX_MESSAGE_BYTES, messageSize } from "../broker/message-limits.js";
import type { MessageInput } from "../broker/types.js";

/** The fields of a `traceparent` header (version 00). */
export interface TraceParent {
  /** 32 lowercase hex digits, not all zero. */
  traceId: string;
  /** 16 lowercase hex digits, not all zero: the caller's span. */
  parentId: string;
  /** Trace flags byte; bit 0 = sampled. */
  flags: number;
}

/** The trace context of one request: its parsed `traceparent` and the raw `tracestate`, if any. */
export interface TraceContext {
  traceparent: TraceParent;
  /** Vendor state, passed on unchanged; empty when absent. */
  tracestate: string;
}

/** Message attribute that carries the publisher's `traceparent` to every delivery. */
export const TRACEPARENT_ATTRIBUTE = "traceparent";
/** Message attribute that carries the publisher's `tracestate` (only set together with `traceparent`). */
export const TRACESTATE_ATTRIBUTE = "tracestate";

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE_ID = "0".repeat(32);
const ZERO_SPAN_ID = "0".repeat(16);
/** Longest tracestate kept (the spec allows dropping it when over 512 characters). */
const MAX_TRACESTATE_CHARS = 512;

/**
 * Parses a `traceparent` header per W3C Trace Context level 1; undefined for anything invalid
 * (wrong shape, version ff, all-zero ids, or extra fields on version 00), as the spec says to
 * treat an invalid header as absent.
 */
export function parseTraceparent(header: string | undefined | null): TraceParent | undefined {
  if (typeof header !== "string") return undefined;
  const match = TRACEPARENT.exec(header.trim());
  if (match === null) return undefined;
  const [, version, traceId, parentId, flags, rest] = match;
  if (version === "ff") return undefined;
  if (version === "00" && rest !== undefined) return undefined;
  if (traceId === ZERO_TRACE_ID || parentId === ZERO_SPAN_ID) return undefined;
  return { traceId: traceId!, parentId: parentId!, flags: Number.parseInt(flags!, 16) };
}

/** The `traceparent` header text (version 00) of `parent`. */
export function formatTraceparent(parent: TraceParent): string {
  return `00-${parent.traceId}-${parent.parentId}-${(parent.flags & 0xff).toString(16).padStart(2, "0")}`;
}

/**
 * Random bytes for ids, filled 4 KiB at a time: a call into the CSPRNG per id (twice per tunnelled
 * request) cost more than the rest of building the request head.
 */
const randomPool = Buffer.alloc(4096);
let randomOffset = randomPool.length;

function randomHex(bytes: number): string {
  if (randomOffset + bytes > randomPool.length) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  const hex = randomPool.toString("hex", randomOffset, randomOffset + bytes);
  randomOffset += bytes;
  return hex;
}

/** A new span id: 16 random hex digits, never all zero. */
export function newSpanId(): string {
  let id = ZERO_SPAN_ID;
  while (id === ZERO_SPAN_ID) id = randomHex(8);
  return id;
}

/** A new trace id: 32 random hex digits, never all zero. */
export function newTraceId(): string {
  let id = ZERO_TRACE_ID;
  while (id === ZERO_TRACE_ID) id = randomHex(16);
  return id;
}

/**
 * The `traceparent` of a hop made on behalf of `parent` (same trace id and flags, a new span id),
 * for a component that forwards a request (the tunnel). Without a valid parent, a new trace (sampled).
 */
export function childTraceparent(parent: TraceParent | string | undefined): TraceParent {
  const parsed = typeof parent === "string" ? parseTraceparent(parent) : parent;
  if (parsed === undefined) return { traceId: newTraceId(), parentId: newSpanId(), flags: 1 };
  return { traceId: parsed.traceId, parentId: newSpanId(), flags: parsed.flags };
}

type HeaderValue = string | string[] | undefined;

function firstHeader(value: HeaderValue): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The trace context in request headers (HTTP headers, which is also where gRPC metadata travels),
 * or undefined when there is no valid `traceparent`. `tracestate` is only kept together with one.
 */
export function traceContextFromHeaders(headers: Record<string, HeaderValue>): TraceContext | undefined {
  const traceparent = parseTraceparent(firstHeader(headers.traceparent));
  if (traceparent === undefined) return undefined;
  const state = headers.tracestate;
  const tracestate = (Array.isArray(state) ? state.join(",") : (state ?? "")).trim();
  return { traceparent, tracestate: tracestate.length > MAX_TRACESTATE_CHARS ? "" : tracestate };
}

const current = new AsyncLocalStorage<TraceContext>();

/** Runs `work` with `context` as the current trace context (for everything it starts, sync or async). */
export function runWithTraceContext<T>(context: TraceContext | undefined, work: () => T): T {
  return context === undefined ? work() : current.run(context, work);
}

/** The trace context of the request being handled, or undefined. */
export function currentTraceContext(): TraceContext | undefined {
  return current.getStore();
}

/**
 * What the engine chain's interceptors read of the request's tracing: its W3C trace context, read from the async
 * context each time the field is read (so a call that does not ask costs nothing).
 */
export interface TracingContext {
  readonly trace: TraceContext | undefined;
}

/** The {@link TracingContext} of the current request. */
export const tracingContext: TracingContext = {
  get trace() {
    return current.getStore();
  },
};

/** `{ trace_id }` for a log line when the current request has a trace context, else `{}`. */
export function traceLogFields(context: TraceContext | undefined = current.getStore()): { trace_id?: string } {
  return context === undefined ? {} : { trace_id: context.traceparent.traceId };
}

/** Attributes a message may have before the trace attributes are no longer added (Pub/Sub allows 100). */
const MAX_ATTRIBUTES_BEFORE_TRACE = 98;

/**
 * `messages` with the trace context stored as the `traceparent` (and `tracestate`) attributes, so
 * every delivery carries it. A message whose client already set `traceparent` keeps its own; a
 * message is left unchanged when it is empty (it must still fail validation), has no room for two
 * more attributes, or would exceed the message size limit. Returns `messages` itself when nothing changed.
 */
export function withTraceAttributes(messages: MessageInput[], context: TraceContext | undefined): MessageInput[] {
  if (context === undefined || !Array.isArray(messages)) return messages;
  const traceparent = formatTraceparent(context.traceparent);
  let changed: MessageInput[] | undefined;
  for (let index = 0; index < messages.length; index++) {
    const message = messages[index]!;
    const attributes = message.attributes ?? {};
    if (typeof attributes !== "object" || Object.hasOwn(attributes, TRACEPARENT_ATTRIBUTE)) continue;
    const count = Object.keys(attributes).length;
    if (count > MAX_ATTRIBUTES_BEFORE_TRACE) continue;
    if (!(message.data instanceof Uint8Array) || (message.data.byteLength === 0 && count === 0)) continue;
    const added: Record<string, string> = { [TRACEPARENT_ATTRIBUTE]: traceparent };
    if (context.tracestate !== "" && !Object.hasOwn(attributes, TRACESTATE_ATTRIBUTE)) {
      added[TRACESTATE_ATTRIBUTE] = context.tracestate;
    }
    const next = { ...attributes, ...added };
    const orderingKey = typeof message.orderingKey === "string" ? message.orderingKey : "";
    if (messageSize({ data: message.data, attributes: next }) + Buffer.byteLength(orderingKey) > MAX_MESSAGE_BYTES)
      continue;
    changed ??= messages.slice();
    changed[index] = { ...message, attributes: next };
  }
  return changed ?? messages;
}
