// Routes the dashboard: its static page at `/` (from web/), the browser client it imports, and the JSON API it polls.
import { fileURLToPath } from "node:url";
import { type Route, requestUrl, sendJson } from "../../http/index.js";
import { createClientBundleLoader, DASHBOARD_CLIENT_PATH } from "./client-bundle.js";
import { createOverviewBuilder, type OverviewSources } from "./overview.js";
import { loadStaticFiles, serveFile } from "./static-files.js";
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
  /** The dashboard's entries of the edge's route table: the overview API, the browser client, web/'s files. */
  routes: Route[];
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
  const routes: Route[] = [
    {
      methods: ["GET"],
      path: DASHBOARD_OVERVIEW_PATH,
      async handle(request, response) {
        const project = requestUrl(request).searchParams.get("project");
        sendJson(response, 200, await overview(project));
      },
    },
    {
      methods: ["GET"],
      path: DASHBOARD_CLIENT_PATH,
      handle: async (request, response) => serveFile(await clientBundle(), request, response),
    },
    ...[...files].map(
      ([path, file]): Route => ({
        methods: ["GET"],
        path,
        handle: (request, response) => serveFile(file, request, response),
      }),
    ),
  ];
  return { routes, close: () => history.close() };
}
