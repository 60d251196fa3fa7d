// One registered agent session: its standby stream pool, requests waiting for a stream, and its state.
import type { UpstreamStatus } from "../../gen/streamgate/tunnel/v1/tunnel_pb.js";
import type { TunnelStream } from "./tunnel-stream.js";

/** How long a peak of requests in flight keeps its streams open as standbys (reuse_streams). */
const PEAK_WINDOW_MS = 10_000;
/** After this long without the asked-for standbys, the server asks again. */
const STALE_REQUEST_MS = 1_000;

/** What a session needs from its control stream. */
export interface SessionControl {
  /** Asks the agent for `count` more standby streams. */
  openStreams(count: number): void;
}

export interface AgentSessionInit {
  id: string;
  clientId: string;
  group: string;
  /** Name of the token grant the agent authenticated with (standbys must present the same one). */
  grantName: string;
  /** The token the agent presented, kept to re-check the session when the rules file changes. */
  token: string;
  agentVersion: string;
  /** Standby streams to keep ready (before in-flight headroom). */
  standbyTarget: number;
  /** Most tunnel streams (standby + in flight) this agent serves. */
  maxStreams: number;
  control: SessionControl;
  /** Streams the agent opens by itself right after Registered. */
  initialStandbys: number;
  /** Streams whose exchange ended cleanly go back to the pool (the agent offered reuse_streams). */
  reuseStreams?: boolean;
}

/** A request waiting for a standby stream of this session. */
interface Waiter {
  resolve(stream: TunnelStream | null): void;
}

export class AgentSession {
  readonly id: string;
  readonly clientId: string;
  readonly group: string;
  readonly grantName: string;
  readonly token: string;
  readonly agentVersion: string;
  /** A stream whose exchange ended cleanly is a standby again (Registered.reuse_streams). */
  readonly reuseStreams: boolean;
  readonly connectedAtMs = Date.now();
  /** False after missed heartbeats or once the session ended. */
  healthy = true;
  /** No new requests (the agent or the server asked to drain, or rotation). */
  draining = false;
  ended = false;
  /** Requests running on this session's streams. */
  inFlight = 0;
  lastHeardAtMs = Date.now();
  /** Latest upstream health the agent reported. */
  upstreams: UpstreamStatus[] = [];
  /** Streams carrying a request right now (destroyed when the session is lost). */
  readonly active = new Set<TunnelStream>();
  /** Called when a draining session has nothing in flight any more. */
  onDrained: (() => void) | null = null;
  private readonly standby: TunnelStream[] = [];
  private readonly waiters: Waiter[] = [];
  /** Standbys asked for (OpenStreams or the initial ones) that have not attached yet. */
  private requested: number;
  private requestedAtMs = Date.now();
  private topUpScheduled = false;

  constructor(private readonly init: AgentSessionInit) {
    this.id = init.id;
    this.clientId = init.clientId;
    this.group = init.group;
    this.grantName = init.grantName;
    this.token = init.token;
    this.agentVersion = init.agentVersion;
    this.reuseStreams = init.reuseStreams === true;
    this.requested = init.initialStandbys;
  }

  /** Requests on this session or waiting for one of its streams: what the balancer compares. */
  get outstanding(): number {
    return this.inFlight + this.waiters.length;
  }

  get standbyCount(): number {
    return this.standby.length;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** Can take new requests. */
  get available(): boolean {
    return this.healthy && !this.draining && !this.ended;
  }

  /** Stream calls attached so far. */
  attached = 0;
  /** The most requests in flight at once lately (reuse_streams keeps that many streams), and when it was seen. */
  private peakInFlight = 0;
  private peakAtMs = 0;

  /** When the agent last attached a standby (ms since epoch): it is alive and keeping up. */
  lastAttachAtMs = 0;

  /** A standby attached; returns false when the session cannot use it (the caller ends the stream). */
  addStandby(stream: TunnelStream): boolean {
    this.lastAttachAtMs = Date.now();
    this.attached++;
    if (this.requested > 0) this.requested--;
    if (!this.available) return false;
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      waiter.resolve(stream);
      this.scheduleTopUp();
      return true;
    }
    if (this.standby.length >= this.holdLimit()) return false;
    this.standby.push(stream);
    return true;
  }

  /**
   * A stream whose exchange ended cleanly, back for the next request (reuse_streams); false when the session
   * cannot use it (ended, draining, or the pool is well above what the load needs): the caller ends it.
   */
  returnStandby(stream: TunnelStream): boolean {
    if (!this.available) return false;
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      waiter.resolve(stream);
      return true;
    }
    if (this.standby.length >= this.keepLimit()) return false;
    this.standby.push(stream);
    return true;
  }

  /** A standby went away before it was used (the agent closed it). */
  removeStandby(stream: TunnelStream): void {
    const index = this.standby.indexOf(stream);
    if (index >= 0) this.standby.splice(index, 1);
    this.scheduleTopUp();
  }

  /** Takes a standby now, or waits up to `waitMs` for one; null when none came (or the session ended). */
  takeStandby(waitMs: number, signal: AbortSignal): Promise<TunnelStream | null> | TunnelStream | null {
    const ready = this.standby.pop();
    if (ready !== undefined) {
      this.scheduleTopUp();
      return ready;
    }
    if (!this.available || waitMs <= 0 || signal.aborted) return null;
    return new Promise((resolve) => {
      const waiter: Waiter = {
        resolve: (stream) => {
          clearTimeout(timer);
          signal.removeEventListener("abort", onAbort);
          resolve(stream);
        },
      };
      const leave = () => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        waiter.resolve(null);
      };
      const onAbort = () => leave();
      const timer = setTimeout(leave, waitMs);
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
      this.scheduleTopUp();
    });
  }

  /** A request on `stream` started. */
  begin(stream: TunnelStream): void {
    this.inFlight++;
    this.active.add(stream);
    if (this.reuseStreams) {
      const now = Date.now();
      if (this.inFlight >= this.peakInFlight || now - this.peakAtMs > PEAK_WINDOW_MS) {
        this.peakInFlight = this.inFlight;
        this.peakAtMs = now;
      }
    }
  }

  /** A request on `stream` ended (any way). */
  end(stream: TunnelStream): void {
    if (!this.active.delete(stream)) return;
    this.inFlight--;
    if (this.draining && this.inFlight === 0) {
      this.onDrained?.();
      return;
    }
    // After a burst the pool holds what the peak needed: give back the oldest standbys well above today's need.
    const keep = this.keepLimit();
    while (this.standby.length > keep) this.standby.shift()!.finish(null);
    this.scheduleTopUp();
  }

  /** Stops taking requests: waiters get null; standbys are returned for the caller to end. */
  stopTaking(): TunnelStream[] {
    for (const waiter of this.waiters.splice(0)) waiter.resolve(null);
    return this.standby.splice(0);
  }

  /** Most standbys worth keeping: the target plus headroom for a quarter of the load in flight. */
  private poolLimit(): number {
    const wanted = this.init.standbyTarget + Math.ceil(this.inFlight / 4);
    return Math.max(0, Math.min(wanted, this.init.maxStreams - this.inFlight));
  }

  /**
   * Most standbys an attaching stream may join: the pool limit, and with reuse_streams and a recent peak what that
   * peak needs in all (peak + target, less the streams in flight: they come back).
   */
  private holdLimit(): number {
    const pool = this.poolLimit();
    if (!this.peakIsRecent()) return pool;
    return Math.max(pool, this.peakTotal() - this.inFlight);
  }

  /**
   * Most standbys kept when streams come back: twice the pool limit plus 8, and with reuse_streams the recent peak
   * of requests in flight plus the target, and 8 (a burst that comes back every few seconds then finds its streams
   * open).
   */
  private keepLimit(): number {
    if (!this.peakIsRecent()) return this.poolLimit() * 2 + 8;
    return Math.max(this.poolLimit(), this.peakTotal() - this.inFlight) + 8;
  }

  /** Streams the recent peak needed in all: peak in flight + the standby target (within the agent's maximum). */
  private peakTotal(): number {
    return Math.min(this.peakInFlight + this.init.standbyTarget, this.init.maxStreams);
  }

  /** With reuse_streams, a peak of requests in flight seen within PEAK_WINDOW_MS. */
  private peakIsRecent(): boolean {
    return this.reuseStreams && Date.now() - this.peakAtMs <= PEAK_WINDOW_MS;
  }

  /** Coalesces OpenStreams requests: one control message per tick at most. */
  scheduleTopUp(): void {
    if (this.topUpScheduled || !this.available) return;
    this.topUpScheduled = true;
    setImmediate(() => {
      this.topUpScheduled = false;
      if (!this.available) return;
      const wanted = Math.min(this.poolLimit() + this.waiters.length, this.init.maxStreams - this.inFlight);
      // An agent opens at most its free room (max streams - in flight - standby) and drops the rest of an ask:
      // never count more asked-for streams than that room, and forget asks that went unanswered for a while.
      const room = Math.max(0, this.init.maxStreams - this.inFlight - this.standby.length);
      this.requested = Math.min(this.requested, room);
      if (this.requested > 0 && Date.now() - this.requestedAtMs > STALE_REQUEST_MS) this.requested = 0;
      let missing = wanted - this.standby.length - this.requested;
      // With reuse_streams the streams in flight come back: while a recent peak's streams are all there (standby,
      // in flight or asked for), ask only for requests waiting beyond them. A headroom asked on top of every
      // request in flight made a closed-loop load, which swings between none and its peak in flight, ask for
      // streams at each peak and refuse them (or their return) on the way down: a quarter of the calls of
      // bench/tunnel's unary phase opened and closed a tunnel stream.
      if (this.peakIsRecent())
        missing = Math.min(
          missing,
          this.peakTotal() + this.waiters.length - (this.standby.length + this.inFlight + this.requested),
        );
      if (missing <= 0) return;
      this.requested += missing;
      this.requestedAtMs = Date.now();
      this.init.control.openStreams(missing);
    });
  }
}
