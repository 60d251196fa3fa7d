// Public surface of the dashboard transport: the web page at `/`, the browser client it imports, GET /v1/dashboard/overview.
export { DASHBOARD_CLIENT_PATH } from "./client-bundle.js";
export {
  createDashboardHandler,
  DASHBOARD_OVERVIEW_PATH,
  type DashboardHandler,
  type DashboardOptions,
} from "./dashboard-handler.js";
export type {
  DashboardOverview,
  HistoryOverview,
  SubscriptionOverview,
  TopicOverview,
  TunnelOverview,
} from "./overview.js";
export { summarizeTunnelRules, type TunnelRuleOverview } from "./tunnel-rules-summary.js";
