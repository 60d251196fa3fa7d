// grpc.health.v1.Health: SERVING while the engine is ready and the server is not draining.
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { Code, StreamgateError } from "../../errors/index.js";
import { type Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/health/v1/health_pb.js";

/** What the health service asks of the server. */
export interface HealthSource {
  /** Fully-qualified names of the services served, besides "" (the whole server). */
  services(): string[];
  /** True while the server serves (engine ready, not draining). */
  serving(): Promise<boolean>;
  /** Resolves when the status may have changed (e.g. drain started), or after a while. */
  changed(signal: AbortSignal): Promise<void>;
}

export function createHealthService(source: HealthSource): ServiceImpl<typeof Health> {
  const statusOf = async (service: string): Promise<Status> => {
    if (service !== "" && !source.services().includes(service)) return Status.SERVICE_UNKNOWN;
    return (await source.serving()) ? Status.SERVING : Status.NOT_SERVING;
  };
  return {
    async check(request) {
      const status = await statusOf(request.service);
      if (status === Status.SERVICE_UNKNOWN) {
        throw new StreamgateError(Code.NOT_FOUND, `unknown service "${request.service}"`, {
          reason: "SERVICE_NOT_FOUND",
        });
      }
      return { status };
    },
    async *watch(request, context: HandlerContext) {
      let last: Status | undefined;
      while (!context.signal.aborted) {
        const status = await statusOf(request.service);
        if (status !== last) {
          last = status;
          yield { status };
        }
        await source.changed(context.signal);
      }
      throw context.signal.reason;
    },
    async list() {
      const serving = (await source.serving()) ? Status.SERVING : Status.NOT_SERVING;
      const statuses: Record<string, { status: Status }> = { "": { status: serving } };
      for (const service of source.services()) statuses[service] = { status: serving };
      return { statuses };
    },
  };
}
