// The addresses of one upstream: pick strategy, outstanding requests, grpc.health.v1 probes and passive ejection.
import type { HealthCheckSpec, UpstreamSpec } from "../rules/index.js";
import { probeHealth } from "./health-probe.js";
import type { Http2SessionPool } from "./http2-sessions.js";

/** Health of one address, as reported to the server (`UpstreamStatus`). */
export interface AddressStatus {
  upstream: string;
  address: string;
  serving: boolean;
  detail: string;
}

/** How long an address that refused a connection is skipped while others are usable. */
const EJECT_AFTER_CONNECT_FAILURE_MS = 2_000;

interface AddressState {
  address: string;
  outstanding: number;
  /** Last probe verdict (true until a probe says otherwise). */
  serving: boolean;
  detail: string;
  /** Passive ejection after a connect failure, until this time (ms since epoch). */
  ejectedUntil: number;
}

/** One upstream's addresses and their state. */
export class UpstreamPool {
  private readonly states: AddressState[];
  private turn = 0;
  private timer: NodeJS.Timeout | undefined;
  private probing: Promise<void> | undefined;
  private closed = false;

  constructor(
    readonly config: UpstreamSpec,
    private readonly sessions: Http2SessionPool,
    private readonly onHealthChange: () => void,
  ) {
    this.states = config.addresses.map((address) => ({
      address,
      outstanding: 0,
      serving: true,
      detail: "",
      ejectedUntil: 0,
    }));
    if (config.healthCheck !== null) {
      const check = config.healthCheck;
      void this.probe(check);
      this.timer = setInterval(() => void this.probe(check), check.intervalMs);
      this.timer.unref();
    }
  }

  /** The next address by the pick strategy among healthy ones; undefined when none is healthy. */
  pick(): string | undefined {
    const now = Date.now();
    const serving = this.states.filter((state) => state.serving);
    let usable = serving.filter((state) => state.ejectedUntil <= now);
    // Every serving address was ejected passively: try the one ejected first rather than fail.
    if (usable.length === 0 && serving.length > 0) {
      usable = [serving.reduce((best, state) => (state.ejectedUntil < best.ejectedUntil ? state : best))];
    }
    if (usable.length === 0) return undefined;
    const start = this.turn++ % usable.length;
    if (this.config.pick === "least_outstanding") {
      let best = usable[start]!;
      for (let offset = 1; offset < usable.length; offset++) {
        const candidate = usable[(start + offset) % usable.length]!;
        if (candidate.outstanding < best.outstanding) best = candidate;
      }
      return best.address;
    }
    return usable[start]!.address;
  }

  /** Counts a request in progress on `address` until `release`. */
  acquire(address: string): void {
    const state = this.state(address);
    if (state !== undefined) state.outstanding++;
  }

  release(address: string, connectFailed: boolean): void {
    const state = this.state(address);
    if (state === undefined) return;
    state.outstanding = Math.max(0, state.outstanding - 1);
    if (connectFailed) state.ejectedUntil = Date.now() + EJECT_AFTER_CONNECT_FAILURE_MS;
  }

  /** Requests in progress per address. */
  outstanding(): Record<string, number> {
    return Object.fromEntries(this.states.map((state) => [state.address, state.outstanding]));
  }

  statuses(): AddressStatus[] {
    return this.states.map((state) => ({
      upstream: this.config.name,
      address: state.address,
      serving: state.serving,
      detail: state.detail,
    }));
  }

  /** Runs one probe round now (tests; the interval runs them otherwise). */
  async probeNow(): Promise<void> {
    if (this.config.healthCheck === null) return;
    await this.probing;
    await this.probe(this.config.healthCheck);
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }

  private state(address: string): AddressState | undefined {
    return this.states.find((state) => state.address === address);
  }

  private probe(check: HealthCheckSpec): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.probing ??= this.probeAll(check).finally(() => {
      this.probing = undefined;
    });
    return this.probing;
  }

  private async probeAll(check: HealthCheckSpec): Promise<void> {
    const results = await Promise.all(
      this.states.map((state) => probeHealth(this.sessions, state.address, check.service, check.timeoutMs)),
    );
    if (this.closed) return;
    let changed = false;
    results.forEach((result, index) => {
      const state = this.states[index]!;
      if (state.serving !== result.serving) changed = true;
      state.serving = result.serving;
      state.detail = result.detail;
      if (result.serving) state.ejectedUntil = 0;
    });
    if (changed) this.onHealthChange();
  }
}
