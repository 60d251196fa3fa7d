// The history panel: per-topic publish rate and per-subscription backlog / oldest unacked age, from the samples the
// server keeps (the overview's `history`), drawn as small SVG charts.
import { lineChart } from "./charts.js";
import { $, emptyState, formatDuration, formatNumber, formatRate, h, shortName } from "./dom.js";

const formatAge = (ms) => (ms === 0 ? "0" : formatDuration(ms));

/** Per-topic publish rate and per-subscription backlog / oldest unacked age over the server's sample window. */
/** An empty state that spans its chart grid's row. */
function chartsEmpty(title, hint) {
  const element = emptyState(title, hint);
  element.classList.add("charts-empty");
  return element;
}

export function renderHistory(overview) {
  const history = overview.history;
  const panel = $("history");
  panel.hidden = history === null || history === undefined;
  if (panel.hidden) return;
  $("history-note").textContent =
    `last ${formatDuration(history.windowMs)} · one sample every ${formatDuration(history.intervalMs)}` +
    (history.truncated
      ? ` · the first ${Math.max(history.topics.length, history.subscriptions.length)} of each by name`
      : "");
  const nowMs = overview.generatedAtMs;
  const span = { windowMs: history.windowMs, nowMs };
  $("history-topics").replaceChildren(
    ...(history.topics.length === 0
      ? [chartsEmpty("No topics", "Publish rates show here once a topic exists.")]
      : history.topics.map((topic) =>
          h(
            "div",
            { class: "chart-card", "data-topic": topic.name },
            lineChart({
              ...span,
              title: `${shortName(topic.name)} · publish rate`,
              kind: "rate",
              format: (value) => `${formatRate(value)}/s`,
              points: topic.points.map((point) => ({ atMs: point.atMs, value: point.publishRatePerSecond })),
            }),
          ),
        )),
  );
  $("history-subscriptions").replaceChildren(
    ...(history.subscriptions.length === 0
      ? [chartsEmpty("No subscriptions", "Backlog and oldest unacked age show here once a subscription exists.")]
      : history.subscriptions.map((subscription) =>
          h(
            "div",
            { class: "chart-card", "data-subscription": subscription.name },
            lineChart({
              ...span,
              title: `${shortName(subscription.name)} · backlog`,
              kind: "backlog",
              format: (value) => formatNumber(Math.round(value)),
              points: subscription.points.map((point) => ({ atMs: point.atMs, value: point.backlog })),
            }),
            lineChart({
              ...span,
              title: `${shortName(subscription.name)} · oldest unacked`,
              kind: "age",
              format: formatAge,
              points: subscription.points.map((point) => ({ atMs: point.atMs, value: point.oldestUnackedAgeMs })),
            }),
          ),
        )),
  );
}
