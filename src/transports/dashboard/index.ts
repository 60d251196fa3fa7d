// Public surface of the dashboard transport: the web page at `/` and GET /v1/dashboard/overview.
export { createDashboardHandler, DASHBOARD_OVERVIEW_PATH, type DashboardOptions } from "./dashboard-handler.js";
export type { DashboardOverview, SubscriptionOverview, TopicOverview, TunnelOverview } from "./overview.js";
