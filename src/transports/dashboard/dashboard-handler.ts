// Routes the dashboard: its static page at `/` (from web/), the browser client it imports, and the JSON API it polls.
import { fileURLToPath } from "node:url";
import { errors } from "../../errors/index.js";
import { type AnyRequest, type AnyResponse, requestUrl, sendError, sendJson } from "../../http/index.js";
import { createClientBundleLoader, DASHBOARD_CLIENT_PATH } from "./client-bundle.js";
import { createOverviewBuilder, type OverviewSources } from "./overview.js";
import { loadStaticFiles, serveFile, serveStaticFile } from "./static-files.js";
import { createStatsHistory } from "./stats-history.js";

/** Path of the overview API. */
export const DASHBOARD_OVERVIEW_PATH = "/v1/dashboard/overview";

export interface DashboardOptions extends Omit<OverviewSources, "history"> {
  /** Folder of the static files. Default: the package's `web/`. */
  webRoot?: string;
  /**
   * Time between two samples of the charts' history (90 are kept). Default 10 000 ms: the last 15 minutes.
   * Tests shorten it so charts fill in seconds.
   */
  sampleIntervalMs?: number;
}

export interface DashboardHandler {
  /**
   * Resolves true when it answered the request, false to let other routes try.
   */
  handle(request: AnyRequest, response: AnyResponse, path: string): Promise<boolean>;
  /** Stops the history's sampling timer (call before closing the engine). */
  close(): Promise<void>;
}

/**
 * Creates the dashboard and starts sampling the history its charts show. Throws when the package's browser client
 * build is missing (see createClientBundleLoader).
 */
export function createDashboardHandler(options: DashboardOptions): DashboardHandler {
  const files = loadStaticFiles(options.webRoot ?? fileURLToPath(new URL("../../../web/", import.meta.url)));
  const clientBundle = createClientBundleLoader();
  const history = createStatsHistory({ engine: options.engine, intervalMs: options.sampleIntervalMs });
  const overview = createOverviewBuilder({ ...options, history });
  history.start();
  const handle = async (request: AnyRequest, response: AnyResponse, path: string): Promise<boolean> => {
    if (path === DASHBOARD_OVERVIEW_PATH) {
      if (request.method !== "GET") {
        sendError(response, errors.invalidArgument("method", `${DASHBOARD_OVERVIEW_PATH} answers GET only`));
        return true;
      }
      const project = requestUrl(request).searchParams.get("project");
      sendJson(response, 200, await overview(project));
      return true;
    }
    if (path === DASHBOARD_CLIENT_PATH && (request.method === "GET" || request.method === "HEAD")) {
      serveFile(await clientBundle(), request, response);
      return true;
    }
    return serveStaticFile(files, request, response, path);
  };
  return { handle, close: () => history.close() };
}
