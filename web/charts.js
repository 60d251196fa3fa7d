// Small SVG line charts of the server's history (no chart library): one series over a fixed time window.
import { formatDuration, h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 280;
const HEIGHT = 72;
const PAD = { top: 6, right: 4, bottom: 4, left: 4 };

function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  for (const child of children) element.append(child);
  return element;
}

/**
 * A labelled chart of `points` (`{atMs, value}`, oldest first) over the `windowMs` before `nowMs`.
 * The figure carries its numbers as text (caption, latest and peak values) for screen readers and tests.
 */
export function lineChart({ title, points, windowMs, nowMs, format, kind }) {
  const startMs = nowMs - windowMs;
  const visible = points.filter((point) => point.atMs >= startMs);
  const peak = Math.max(0, ...visible.map((point) => point.value));
  const top = peak === 0 ? 1 : peak * 1.1;
  const x = (atMs) => PAD.left + ((atMs - startMs) / windowMs) * (WIDTH - PAD.left - PAD.right);
  const y = (value) => HEIGHT - PAD.bottom - (value / top) * (HEIGHT - PAD.top - PAD.bottom);
  const latest = visible.at(-1);
  const summary =
    visible.length === 0
      ? `${title}: no samples yet`
      : `${title}: latest ${format(latest.value)}, peak ${format(peak)}, ${visible.length} samples`;
  const coordinates = visible.map((point) => `${x(point.atMs).toFixed(1)},${y(point.value).toFixed(1)}`).join(" ");
  const chart = svg(
    "svg",
    {
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      class: `chart chart-${kind}`,
      role: "img",
      "aria-label": summary,
      "data-samples": visible.length,
      preserveAspectRatio: "none",
    },
    svg("title", {}, summary),
    svg("line", { class: "chart-base", x1: PAD.left, x2: WIDTH - PAD.right, y1: y(0), y2: y(0) }),
  );
  if (visible.length > 1) {
    const area = `${x(visible[0].atMs).toFixed(1)},${y(0)} ${coordinates} ${x(latest.atMs).toFixed(1)},${y(0)}`;
    chart.append(svg("polygon", { class: "chart-area", points: area }));
  }
  if (visible.length > 0) chart.append(svg("polyline", { class: "chart-line", points: coordinates }));
  if (latest !== undefined)
    chart.append(svg("circle", { class: "chart-dot", cx: x(latest.atMs), cy: y(latest.value), r: 2.5 }));
  return h(
    "figure",
    { class: "chart-figure", "data-chart": kind },
    h(
      "figcaption",
      {},
      h("span", { class: "chart-title" }, title),
      h("span", { class: "chart-value" }, latest === undefined ? "–" : format(latest.value)),
    ),
    chart,
    h(
      "div",
      { class: "chart-axis", "aria-hidden": "true" },
      h("span", {}, `−${formatDuration(windowMs)}`),
      h("span", {}, `peak ${format(peak)}`),
      h("span", {}, "now"),
    ),
  );
}
