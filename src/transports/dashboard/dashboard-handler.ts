// Routes the dashboard: its static page at `/` (from web/) and the JSON API it polls.
import { fileURLToPath } from "node:url";
import { errors } from "../../errors/index.js";
import { type AnyRequest, type AnyResponse, requestUrl, sendError, sendJson } from "../rest/index.js";
import { createOverviewBuilder, type OverviewSources } from "./overview.js";
import { loadStaticFiles, serveStaticFile } from "./static-files.js";

/** Path of the overview API. */
export const DASHBOARD_OVERVIEW_PATH = "/v1/dashboard/overview";

export interface DashboardOptions extends OverviewSources {
  /** Folder of the static files. Default: the repository's `web/`. */
  webRoot?: string;
}

/** Resolves true when it answered the request, false to let other routes try. */
export function createDashboardHandler(
  options: DashboardOptions,
): (request: AnyRequest, response: AnyResponse, path: string) => Promise<boolean> {
  const files = loadStaticFiles(options.webRoot ?? fileURLToPath(new URL("../../../web/", import.meta.url)));
  const overview = createOverviewBuilder(options);
  return async (request, response, path) => {
    if (path === DASHBOARD_OVERVIEW_PATH) {
      if (request.method !== "GET") {
        sendError(response, errors.invalidArgument("method", `${DASHBOARD_OVERVIEW_PATH} answers GET only`));
        return true;
      }
      const project = requestUrl(request).searchParams.get("project");
      sendJson(response, 200, await overview(project));
      return true;
    }
    return serveStaticFile(files, request, response, path);
  };
}
