// The live agent sessions by id and group; per-request choice by power of two choices; ejection of failing agents.
import type { AgentSession } from "./agent-session.js";

export interface EjectionOptions {
  /** Consecutive UNAVAILABLE results after which an agent is ejected. Default 5. */
  afterFailures: number;
  /** First ejection, in ms; doubles on each further ejection. Default 10 000. */
  baseMs: number;
  /** Longest ejection, in ms. Default 300 000. */
  maxMs: number;
}

export const defaultEjectionOptions: EjectionOptions = { afterFailures: 5, baseMs: 10_000, maxMs: 300_000 };

interface EjectionState {
  consecutiveFailures: number;
  /** Ejected until this time (ms since epoch); 0 when not ejected. */
  untilMs: number;
  /** Length of the next ejection. */
  nextMs: number;
}

export class AgentRegistry {
  private readonly sessions = new Map<string, AgentSession>();
  private readonly groups = new Map<string, Set<AgentSession>>();
  /** By `group/client_id`, so a reconnect or rotation does not clear an ejection. */
  private readonly ejections = new Map<string, EjectionState>();

  constructor(private readonly ejection: EjectionOptions = defaultEjectionOptions) {}

  add(session: AgentSession): void {
    this.sessions.set(session.id, session);
    let members = this.groups.get(session.group);
    if (members === undefined) {
      members = new Set();
      this.groups.set(session.group, members);
    }
    members.add(session);
  }

  remove(session: AgentSession): void {
    this.sessions.delete(session.id);
    const members = this.groups.get(session.group);
    members?.delete(session);
    if (members?.size === 0) this.groups.delete(session.group);
    const key = ejectionKey(session);
    const state = this.ejections.get(key);
    if (state !== undefined && state.untilMs < Date.now() && !this.hasClient(session.group, session.clientId))
      this.ejections.delete(key);
  }

  get(id: string): AgentSession | undefined {
    return this.sessions.get(id);
  }

  all(): AgentSession[] {
    return [...this.sessions.values()];
  }

  groupNames(): string[] {
    return [...this.groups.keys()];
  }

  members(group: string): AgentSession[] {
    return [...(this.groups.get(group) ?? [])];
  }

  get size(): number {
    return this.sessions.size;
  }

  isEjected(session: AgentSession, now = Date.now()): boolean {
    const state = this.ejections.get(ejectionKey(session));
    return state !== undefined && state.untilMs > now;
  }

  /**
   * The session for the next request of `group`, or null when it has none that can take requests.
   * Candidates: available and not ejected (all ejected ones only when nothing else is left); those
   * with a standby ready are preferred; among them the one with fewer outstanding requests of two
   * picked at random (power of two choices: near least-loaded without herding on one agent).
   * `exclude` skips sessions already tried for this request.
   */
  pick(group: string, exclude?: ReadonlySet<AgentSession>): AgentSession | null {
    const members = this.groups.get(group);
    if (members === undefined) return null;
    const now = Date.now();
    let candidates: AgentSession[] = [];
    let ejected: AgentSession[] = [];
    for (const session of members) {
      if (!session.available || exclude?.has(session)) continue;
      if (this.isEjected(session, now)) ejected.push(session);
      else candidates.push(session);
    }
    if (candidates.length === 0) candidates = ejected;
    ejected = [];
    if (candidates.length === 0) return null;
    const ready = candidates.filter((session) => session.standbyCount > 0);
    if (ready.length > 0) candidates = ready;
    if (candidates.length === 1) return candidates[0]!;
    const first = Math.floor(Math.random() * candidates.length);
    let second = Math.floor(Math.random() * (candidates.length - 1));
    if (second >= first) second++;
    const a = candidates[first]!;
    const b = candidates[second]!;
    return b.outstanding < a.outstanding ? b : a;
  }

  /** Records how a request on `session` ended: `unavailable` counts towards ejection, anything else resets it. */
  recordResult(session: AgentSession, unavailable: boolean): void {
    const key = ejectionKey(session);
    let state = this.ejections.get(key);
    if (!unavailable) {
      if (state !== undefined) {
        state.consecutiveFailures = 0;
        if (state.untilMs < Date.now()) state.nextMs = this.ejection.baseMs;
      }
      return;
    }
    if (state === undefined) {
      state = { consecutiveFailures: 0, untilMs: 0, nextMs: this.ejection.baseMs };
      this.ejections.set(key, state);
    }
    state.consecutiveFailures++;
    if (state.consecutiveFailures >= this.ejection.afterFailures && state.untilMs <= Date.now()) {
      state.untilMs = Date.now() + state.nextMs;
      state.nextMs = Math.min(state.nextMs * 2, this.ejection.maxMs);
      state.consecutiveFailures = 0;
    }
  }

  private hasClient(group: string, clientId: string): boolean {
    for (const session of this.groups.get(group) ?? []) if (session.clientId === clientId) return true;
    return false;
  }
}

function ejectionKey(session: AgentSession): string {
  return `${session.group}/${session.clientId}`;
}
