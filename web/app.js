// streamgate dashboard: polls GET /v1/dashboard/overview every 2 s and tails a topic with streamgate/client over SSE.
import { createStreamClient } from "/streamgate-client.browser.js";

const POLL_MS = 2_000;
const MAX_TAIL_ROWS = 200;

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const state = {
  project: params.get("project") ?? "",
  tailTopic: params.get("topic") ?? "",
  overview: null,
  /** AbortController of the running tail, or null. */
  tail: null,
  paused: false,
  received: 0,
};

/** Builds an element; children are nodes or text (never HTML, so topic names and data cannot inject markup). */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") element.className = value;
    // CSSOM, not a style attribute: the page's CSP (style-src 'self') blocks inline style attributes.
    else if (key === "style") Object.assign(element.style, value);
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null && child !== false) element.append(child);
  }
  return element;
}

const numberFormat = new Intl.NumberFormat();
const formatNumber = (value) => numberFormat.format(value);

function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

function formatDuration(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60 ? `${seconds % 60} s` : ""}`.trim();
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60 ? `${minutes % 60} min` : ""}`.trim();
  return `${Math.round(hours / 24)} d`;
}

function formatRate(rate) {
  if (rate === null || rate === undefined) return "–";
  if (rate === 0) return "0";
  return rate < 10 ? rate.toFixed(1) : formatNumber(Math.round(rate));
}

/** `projects/p/topics/t` → `t`. */
const shortName = (name) => name.slice(name.lastIndexOf("/") + 1);

function emptyState(title, ...hint) {
  return h("div", { class: "empty" }, h("strong", {}, title), ...hint);
}

// ---- overview polling ----------------------------------------------------------------------------

async function poll() {
  try {
    const query = state.project ? `?project=${encodeURIComponent(state.project)}` : "";
    const response = await fetch(`/v1/dashboard/overview${query}`, { headers: { accept: "application/json" } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const overview = await response.json();
    state.overview = overview;
    if (!state.project && overview.project) state.project = overview.project;
    render(overview);
    setStatus("live", "Live");
  } catch (error) {
    setStatus("error", `Offline · retrying (${error.message})`);
  } finally {
    clearTimeout(state.timer);
    state.timer = setTimeout(poll, POLL_MS);
  }
}

function setStatus(kind, text) {
  $("status").dataset.state = kind;
  $("status-text").textContent = text;
}

function render(overview) {
  renderProjects(overview);
  $("engine").textContent = `engine: ${overview.engine}`;
  renderCards(overview);
  renderTopics(overview);
  renderSubscriptions(overview);
  renderConnections(overview);
  renderTunnel(overview);
  renderTailChoices(overview);
  $("generated").textContent =
    `Updated ${new Date(overview.generatedAtMs).toLocaleTimeString(undefined, { hour12: false })}`;
}

function renderProjects(overview) {
  const select = $("project");
  const projects = overview.projects.length > 0 ? overview.projects : overview.project ? [overview.project] : [];
  const current = [...select.options].map((option) => option.value).join("\n");
  if (current !== projects.join("\n")) {
    select.replaceChildren(...projects.map((project) => h("option", { value: project }, project)));
    if (projects.length === 0) select.append(h("option", { value: "" }, "no projects yet"));
  }
  select.value = overview.project ?? "";
  select.disabled = projects.length === 0;
}

function renderCards(overview) {
  const { topics, subscriptions, connections } = overview;
  $("m-topics").textContent = formatNumber(topics.length);
  const messages = topics.reduce((sum, topic) => sum + topic.messages, 0);
  const bytes = topics.reduce((sum, topic) => sum + topic.bytes, 0);
  $("m-topics-hint").textContent = `${formatNumber(messages)} messages · ${formatBytes(bytes)} retained`;
  const rates = topics.map((topic) => topic.publishRatePerSecond).filter((rate) => rate !== null);
  $("m-rate").textContent = rates.length === 0 ? "–" : formatRate(rates.reduce((sum, rate) => sum + rate, 0));
  const backlog = subscriptions.reduce((sum, subscription) => sum + subscription.backlog, 0);
  const oldest = Math.max(0, ...subscriptions.map((subscription) => subscription.oldestUnackedAgeMs));
  $("m-backlog").textContent = formatNumber(backlog);
  $("m-backlog-hint").textContent =
    subscriptions.length === 0
      ? "no subscriptions"
      : backlog === 0
        ? `${subscriptions.length} subscription${subscriptions.length === 1 ? "" : "s"} caught up`
        : `oldest unacked ${formatDuration(oldest)}`;
  const live = connections.sse + connections.websocket + connections.grpc;
  $("m-connections").textContent = formatNumber(live);
  $("m-connections-hint").textContent = `streams · ${formatNumber(connections.http)} TCP connections`;
}

function renderTopics(overview) {
  const container = $("topics");
  if (overview.topics.length === 0) {
    container.replaceChildren(
      emptyState(
        overview.project ? `No topics in ${overview.project} yet` : "No projects yet",
        "Create one: ",
        h("code", {}, `curl -X PUT ${location.origin}/v1/projects/${overview.project ?? "my-project"}/topics/my-topic`),
      ),
    );
    return;
  }
  const maxRate = Math.max(1, ...overview.topics.map((topic) => topic.publishRatePerSecond ?? 0));
  const rows = overview.topics.map((topic) => {
    const select = () => chooseTailTopic(topic.name);
    return h(
      "tr",
      {
        tabindex: 0,
        class: topic.name === state.tailTopic ? "selected" : undefined,
        "data-topic": topic.name,
        onclick: select,
        onkeydown: (event) => {
          if (event.key !== "Enter" && event.key !== " ") return;
          event.preventDefault();
          select();
        },
      },
      h("td", {}, h("span", { class: "name" }, shortName(topic.name))),
      h(
        "td",
        { class: "num" },
        formatRate(topic.publishRatePerSecond),
        h("span", { class: "muted" }, "/s"),
        h(
          "span",
          { class: "spark opt" },
          h("i", { style: { width: `${((topic.publishRatePerSecond ?? 0) / maxRate) * 100}%` } }),
        ),
      ),
      h("td", { class: "num" }, formatNumber(topic.messages)),
      h("td", { class: "num" }, formatBytes(topic.bytes)),
      h(
        "td",
        { class: "num opt" },
        h(
          "span",
          { class: "muted" },
          topic.messages === 0 ? `empty · next ${topic.nextOffset}` : `${topic.firstOffset} – ${topic.nextOffset - 1}`,
        ),
      ),
      h(
        "td",
        { class: "opt" },
        formatDuration(topic.retentionMs),
        topic.retentionIsDefault ? h("span", { class: "muted" }, " (default)") : null,
        topic.retentionBytes !== null
          ? h("span", { class: "muted" }, ` · max ${formatBytes(topic.retentionBytes)}`)
          : null,
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
          h("th", {}, "Topic"),
          h("th", { class: "num" }, "Publish rate"),
          h("th", { class: "num" }, "Messages"),
          h("th", { class: "num" }, "Size"),
          h("th", { class: "num opt" }, "Offsets"),
          h("th", { class: "opt" }, "Retention"),
        ),
      ),
      h("tbody", {}, rows),
    ),
  );
}

function renderSubscriptions(overview) {
  const container = $("subscriptions");
  if (overview.subscriptions.length === 0) {
    container.replaceChildren(
      emptyState("No subscriptions", "Pull and push subscriptions of this project show here with their backlog."),
    );
    return;
  }
  const rows = overview.subscriptions.map((subscription) => {
    const age = subscription.oldestUnackedAgeMs;
    const health = subscription.backlog === 0 ? "ok" : age > 5 * 60_000 ? "bad" : age > 30_000 ? "warn" : "neutral";
    return h(
      "tr",
      {},
      h(
        "td",
        {},
        h("span", { class: "name" }, shortName(subscription.name)),
        h("span", { class: "sub" }, `${subscription.deliveryType} · ${shortName(subscription.topic)}`),
      ),
      h("td", { class: "num" }, h("span", { class: `pill ${health}` }, formatNumber(subscription.backlog))),
      h("td", { class: "num" }, subscription.backlog === 0 ? h("span", { class: "muted" }, "–") : formatDuration(age)),
      h("td", { class: "num opt" }, formatNumber(subscription.outstanding)),
      h(
        "td",
        { class: "num" },
        subscription.deadLettered > 0
          ? h(
              "span",
              { class: "pill bad", title: subscription.deadLetterTopic ?? "" },
              formatNumber(subscription.deadLettered),
            )
          : h("span", { class: "muted" }, subscription.deadLetterTopic ? "0" : "–"),
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
          h("th", {}, "Subscription"),
          h("th", { class: "num" }, "Backlog"),
          h("th", { class: "num" }, "Oldest unacked"),
          h("th", { class: "num opt" }, "Leased"),
          h("th", { class: "num" }, "Dead-lettered"),
        ),
      ),
      h("tbody", {}, rows),
    ),
  );
}

const TRANSPORTS = [
  ["sse", "SSE"],
  ["websocket", "WebSocket"],
  ["grpc", "gRPC streams"],
  ["http", "HTTP (TCP)"],
];

function renderConnections(overview) {
  const { connections, streams } = overview;
  const max = Math.max(1, ...TRANSPORTS.map(([key]) => connections[key] ?? 0));
  $("connections").replaceChildren(
    ...TRANSPORTS.map(([key, label]) =>
      h(
        "div",
        { class: "bar-row", "data-transport": key },
        h("span", { class: "bar-label" }, label),
        h(
          "span",
          { class: "bar-track" },
          h("span", { class: "bar-fill", style: { width: `${((connections[key] ?? 0) / max) * 100}%` } }),
        ),
        h("span", { class: "bar-value" }, formatNumber(connections[key] ?? 0)),
      ),
    ),
  );
  $("streams-foot").textContent =
    `${formatNumber(streams.subscribers)} live subscribers on ${formatNumber(streams.feeds)} shared topic feeds` +
    (streams.droppedSlowConsumers > 0 ? ` · ${formatNumber(streams.droppedSlowConsumers)} slow consumers dropped` : "");
}

// ---- tunnel agents -------------------------------------------------------------------------------

const plural = (count, word) => `${formatNumber(count)} ${word}${count === 1 ? "" : "s"}`;

/** The panel shows only when the server runs a tunnel (`--tunnel-rules`); the overview's `tunnel` is null otherwise. */
function renderTunnel(overview) {
  const panel = $("tunnel");
  const tunnel = overview.tunnel;
  panel.hidden = tunnel === null || tunnel === undefined;
  if (panel.hidden) return;
  const { agents, stats, groups } = tunnel;
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
      return h(
        "tr",
        { "data-client-id": agent.client_id, "data-session": agent.session, "data-state": state },
        h(
          "td",
          {},
          h("span", { class: "name" }, agent.client_id),
          h("span", { class: "sub" }, `session ${agent.session.slice(0, 8)}`),
        ),
        h("td", { class: "group" }, agent.group),
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

/** "2/3 serving", coloured by health, with each upstream's address and detail in the tooltip. */
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
  const names = [...new Set(upstreams.map((upstream) => upstream.name))];
  return h(
    "span",
    { class: "upstreams", title },
    h("span", { class: `pill ${health}` }, `${serving}/${upstreams.length} serving`),
    h("span", { class: "muted" }, names.join(", ")),
  );
}

// ---- live tail -----------------------------------------------------------------------------------

function renderTailChoices(overview) {
  const select = $("tail-topic");
  const names = overview.topics.map((topic) => topic.name);
  const wanted = ["", ...names].join("\n");
  if ([...select.options].map((option) => option.value).join("\n") !== wanted) {
    select.replaceChildren(
      h("option", { value: "" }, names.length === 0 ? "no topics" : "Choose a topic…"),
      ...names.map((name) => h("option", { value: name }, shortName(name))),
    );
  }
  select.value = state.tailTopic;
  if (state.tailTopic && !state.tail && names.includes(state.tailTopic)) openTail();
}

function chooseTailTopic(name) {
  if (name === state.tailTopic) return;
  state.tailTopic = name;
  $("tail-topic").value = name;
  syncUrl();
  $("tail-rows").replaceChildren();
  openTail();
  if (state.overview) renderTopics(state.overview);
}

function syncUrl() {
  const next = new URLSearchParams();
  if (state.project) next.set("project", state.project);
  if (state.tailTopic) next.set("topic", state.tailTopic);
  const query = next.toString();
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
}

function setTailState(kind, text) {
  $("tail").dataset.state = kind;
  $("tail-state").textContent = text;
}

/** The live tail's client: the browser build of streamgate/client this server serves (the same code as the npm package). */
const streams = createStreamClient({ baseUrl: location.origin, transport: "sse" });

function openTail() {
  state.tail?.abort();
  state.tail = null;
  state.received = 0;
  if (!state.tailTopic) {
    setTailState("idle", "Idle");
    return;
  }
  const tail = new AbortController();
  state.tail = tail;
  setTailState("connecting", "Connecting…");
  runTail(state.tailTopic, tail.signal);
}

/**
 * Tails `topic` from `latest` (pinned to an offset when it starts). The client reconnects with backoff and resumes
 * after the last offset shown, so a cut connection or a slow-consumer drop neither loses nor repeats a row.
 */
async function runTail(topic, signal) {
  const live = () =>
    setTailState("live", state.received === 0 ? "Live" : `Live · ${formatNumber(state.received)} received`);
  const messages = streams.subscribe(topic, {
    from: "latest",
    signal,
    onOpen: () => {
      if (!signal.aborted) live();
    },
    onReconnect: ({ reason }) => {
      if (!signal.aborted) setTailState("connecting", `Reconnecting… (${reason?.message ?? reason})`);
    },
    onGap: (gap) => {
      if (signal.aborted) return;
      addTailRow(
        h(
          "li",
          { class: "tail-row gap" },
          `Gap: ${gap.lost} message(s) before offset ${gap.firstAvailable} expired before they could be read`,
        ),
      );
    },
  });
  try {
    for await (const message of messages) {
      state.received += 1;
      live();
      if (!state.paused) addTailRow(renderMessage(message));
    }
    if (!signal.aborted) setTailState("error", "Closed");
  } catch (error) {
    // Only errors a retry cannot fix reach here (unknown topic, bad position, no permission).
    if (!signal.aborted) setTailState("error", error.message);
  }
}

function addTailRow(row) {
  const list = $("tail-rows");
  list.prepend(row);
  while (list.childElementCount > MAX_TAIL_ROWS) list.lastElementChild.remove();
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Bytes shown in a binary message's base64 preview. */
const PREVIEW_BYTES = 36;

/** UTF-8 text when the bytes decode and are printable; otherwise a short base64 preview. */
function describeData(bytes) {
  if (bytes.length === 0) return { text: "(empty)", binary: true };
  try {
    const text = utf8.decode(bytes);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: detecting control characters is the point.
    if (!/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text)) return { text, binary: false };
  } catch {
    // not UTF-8: fall through to the binary preview
  }
  const preview = btoa(String.fromCharCode(...bytes.subarray(0, PREVIEW_BYTES)));
  return {
    text: `binary · ${formatNumber(bytes.length)} bytes · ${preview}${bytes.length > PREVIEW_BYTES ? "…" : ""}`,
    binary: true,
  };
}

/** One tail row from a client StreamMessage (offset number, publishTime Date, data bytes). */
function renderMessage(message) {
  const data = describeData(message.data);
  const time = message.publishTime;
  const publishTime = time.toISOString();
  const attributes = Object.entries(message.attributes ?? {});
  if (message.orderingKey) attributes.unshift(["orderingKey", message.orderingKey]);
  return h(
    "li",
    { class: "tail-row fresh", "data-offset": message.offset },
    h("span", { class: "offset" }, `#${message.offset}`),
    h(
      "time",
      { class: "time", datetime: publishTime, title: publishTime },
      time.toLocaleTimeString(undefined, { hour12: false }) + `.${String(time.getMilliseconds()).padStart(3, "0")}`,
    ),
    h(
      "span",
      { class: "attrs" },
      attributes.length === 0
        ? h("span", { class: "muted" }, "–")
        : attributes.map(([key, value]) => h("span", { class: "attr" }, h("b", {}, key), `=${value}`)),
    ),
    h("span", { class: data.binary ? "data binary" : "data", title: data.text }, data.text),
  );
}

// ---- controls ------------------------------------------------------------------------------------

$("project").addEventListener("change", (event) => {
  state.project = event.target.value;
  state.tailTopic = "";
  $("tail-rows").replaceChildren();
  openTail();
  syncUrl();
  poll();
});
$("tail-topic").addEventListener("change", (event) => chooseTailTopic(event.target.value));
$("tail-pause").addEventListener("click", (event) => {
  state.paused = !state.paused;
  event.target.textContent = state.paused ? "Resume" : "Pause";
});
$("tail-clear").addEventListener("click", () => $("tail-rows").replaceChildren());

poll();
