// The tunnel panel: connected agents with every upstream they report (gRPC and HTTP), their in-flight streams, and
// the server rules that route requests to each agent group (or straight to an upstream).
import { $, emptyState, formatDuration, formatNumber, h, plural } from "./dom.js";

/** The panel shows only when the server runs a tunnel (`--tunnel-rules`); the overview's `tunnel` is null otherwise. */
export function renderTunnel(overview) {
  const panel = $("tunnel");
  const tunnel = overview.tunnel;
  panel.hidden = tunnel === null || tunnel === undefined;
  if (panel.hidden) return;
  const { agents, stats, groups } = tunnel;
  const rules = tunnel.rules ?? [];
  const note = $("tunnel-in-flight");
  note.dataset.inFlight = String(stats.inFlight);
  note.textContent =
    `${plural(stats.inFlight, "tunnel stream")} in flight` +
    (stats.pending > 0 ? ` · ${formatNumber(stats.pending)} waiting for an agent` : "") +
    ` · ${plural(stats.sessions, "agent")}`;
  $("tunnel-groups").textContent =
    groups.length === 0
      ? "\u00a0"
      : groups
          .map(
            (group) =>
              `${group.group}: ${group.healthy}/${group.agents} healthy · ${formatNumber(group.inFlight)} in flight`,
          )
          .join("  ·  ");
  renderRules(rules, groups);
  const container = $("tunnel-agents");
  if (agents.length === 0) {
    container.replaceChildren(
      emptyState(
        "No tunnel agents connected",
        "Connect one: ",
        h(
          "code",
          {},
          `STREAMGATE_AGENT_TOKEN=… streamgate agent --server ${location.origin} --group GROUP --config agent.yaml`,
        ),
      ),
    );
    return;
  }
  const rows = [...agents]
    .sort((a, b) => a.group.localeCompare(b.group) || a.client_id.localeCompare(b.client_id))
    .map((agent) => {
      const [state, health] = agent.draining
        ? ["draining", "warn"]
        : agent.ejected
          ? ["ejected", "bad"]
          : agent.healthy
            ? ["healthy", "ok"]
            : ["unhealthy", "bad"];
      const since = Date.parse(agent.connected_since);
      const routedBy = rules.filter((rule) => rule.target.kind === "group" && rule.target.group === agent.group);
      return h(
        "tr",
        { "data-client-id": agent.client_id, "data-session": agent.session, "data-state": state },
        h(
          "td",
          {},
          h("span", { class: "name" }, agent.client_id),
          h("span", { class: "sub" }, `session ${agent.session.slice(0, 8)}`),
        ),
        h(
          "td",
          { class: "group" },
          agent.group,
          h(
            "span",
            { class: "sub routed-by" },
            routedBy.length === 0 ? "no rule routes here" : `rules: ${routedBy.map((rule) => rule.name).join(", ")}`,
          ),
        ),
        h("td", {}, h("span", { class: `pill ${health}` }, state)),
        h(
          "td",
          { class: "num in-flight" },
          formatNumber(agent.in_flight),
          h("span", { class: "muted" }, ` · ${formatNumber(agent.standby)} standby`),
        ),
        h("td", { class: "upstreams-cell" }, renderUpstreams(agent.upstreams)),
        h(
          "td",
          { class: "opt" },
          h(
            "time",
            { datetime: agent.connected_since, title: agent.connected_since },
            Number.isNaN(since)
              ? agent.connected_since
              : `${formatDuration(Math.max(0, overview.generatedAtMs - since))} ago`,
          ),
        ),
      );
    });
  container.replaceChildren(
    h(
      "table",
      {},
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", {}, "Agent"),
          h("th", {}, "Group"),
          h("th", {}, "State"),
          h("th", { class: "num" }, "In flight"),
          h("th", {}, "Upstreams"),
          h("th", { class: "opt" }, "Connected"),
        ),
      ),
      h("tbody", {}, rows),
    ),
  );
}

/** Upstream kind from its address: `http://` and `https://` HTTP, `h2c://` HTTP/2 or gRPC (the agent decides). */
function schemeOf(address) {
  const colon = address.indexOf("://");
  return colon > 0 ? address.slice(0, colon) : "";
}

/** "2/3 serving", then every upstream address with its health, scheme and detail. */
function renderUpstreams(upstreams) {
  if (upstreams.length === 0) return h("span", { class: "muted" }, "none reported");
  const serving = upstreams.filter((upstream) => upstream.serving).length;
  const health = serving === upstreams.length ? "ok" : serving === 0 ? "bad" : "warn";
  const title = upstreams
    .map(
      (upstream) =>
        `${upstream.name} ${upstream.address}: ${upstream.serving ? "serving" : "not serving"}` +
        (upstream.detail ? ` (${upstream.detail})` : ""),
    )
    .join("\n");
  return h(
    "div",
    { class: "upstreams", title },
    h("span", { class: `pill ${health}` }, `${serving}/${upstreams.length} serving`),
    h(
      "ul",
      { class: "upstream-list" },
      upstreams.map((upstream) =>
        h(
          "li",
          {
            "data-upstream": upstream.name,
            "data-address": upstream.address,
            "data-serving": String(upstream.serving),
          },
          h("span", { class: `dot-small ${upstream.serving ? "ok" : "bad"}`, "aria-hidden": "true" }),
          h("span", { class: "name" }, upstream.name),
          " ",
          h("code", {}, upstream.address),
          schemeOf(upstream.address) ? h("span", { class: "muted" }, ` ${schemeOf(upstream.address)}`) : null,
          upstream.serving ? null : h("span", { class: "muted" }, ` · ${upstream.detail || "not serving"}`),
        ),
      ),
    ),
  );
}

/** The server rules in file order, each with where it routes and the agents there. */
function renderRules(rules, groups) {
  const container = $("tunnel-rules");
  if (rules.length === 0) {
    container.replaceChildren(
      emptyState("No tunnel rules", "Requests to the tunnel entries get 404 until a rule matches."),
    );
    return;
  }
  const byGroup = new Map(groups.map((group) => [group.group, group]));
  container.replaceChildren(
    h(
      "table",
      {},
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", {}, "Rule"),
          h("th", {}, "Matches"),
          h("th", {}, "Routes to"),
          h("th", { class: "num" }, "Agents"),
          h("th", { class: "num" }, "Group in flight"),
        ),
      ),
      h(
        "tbody",
        {},
        rules.map((rule) => {
          const group = rule.target.kind === "group" ? byGroup.get(rule.target.group) : undefined;
          return h(
            "tr",
            { "data-rule": rule.name },
            h("td", {}, h("span", { class: "name" }, rule.name), h("span", { class: "sub" }, `line ${rule.line}`)),
            h("td", {}, rule.match, rule.requiresBearerToken ? h("span", { class: "muted" }, " · bearer token") : null),
            h(
              "td",
              { class: "rule-target" },
              rule.target.kind === "group"
                ? `group ${rule.target.group}`
                : `upstream ${rule.target.upstream} (${rule.target.addresses.join(", ")})`,
            ),
            h(
              "td",
              { class: "num" },
              rule.target.kind === "group" ? `${group?.healthy ?? 0}/${group?.agents ?? 0} healthy` : "–",
            ),
            h("td", { class: "num" }, rule.target.kind === "group" ? formatNumber(group?.inFlight ?? 0) : "–"),
          );
        }),
      ),
    ),
  );
}
