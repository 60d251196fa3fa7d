// streamgate dashboard: polls GET /v1/dashboard/overview every 2 s, tails a topic with streamgate/client over SSE,
// signs in with a bearer token (this tab only) and acts through the Pub/Sub REST API (actions.js).
import { createStreamClient } from "/streamgate-client.browser.js";
import { createActions } from "./actions.js";
import { ApiError, api, currentToken, tokenSubject } from "./api.js";
import { $, emptyState, formatBytes, formatDuration, formatNumber, formatRate, h, shortName } from "./dom.js";
import { renderHistory } from "./history.js";
import { createSignIn } from "./signin.js";
import { renderMessage } from "./tail-message.js";
import { renderTunnel } from "./tunnel.js";

const POLL_MS = 2_000;
const MAX_TAIL_ROWS = 200;

const params = new URLSearchParams(location.search);
/** The server's default project: a short topic name (`?topic=orders`) is one of its topics, as on every transport. */
const DEFAULT_PROJECT = "default";
/** `?topic=` as a full name: a short name is a topic of `?project=` (else the default project). */
const fullTopicName = (name, project) =>
  name === "" || name.startsWith("projects/") ? name : `projects/${project || DEFAULT_PROJECT}/topics/${name}`;
const state = {
  project: params.get("project") ?? "",
  tailTopic: fullTopicName(params.get("topic") ?? "", params.get("project") ?? ""),
  overview: null,
  /** AbortController of the running tail, or null. */
  tail: null,
  paused: false,
  received: 0,
};

// ---- overview polling ----------------------------------------------------------------------------

/** Resolves true when the overview loaded, false when it was refused or the server did not answer. */
async function poll() {
  clearTimeout(state.timer);
  try {
    const query = state.project ? `?project=${encodeURIComponent(state.project)}` : "";
    const overview = await api("GET", `/v1/dashboard/overview${query}`);
    state.overview = overview;
    if (!state.project && overview.project) state.project = overview.project;
    render(overview);
    setStatus("live", "Live");
    signIn.hide({ onlyAutomatic: true });
    void actions.refreshSnapshots();
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.httpStatus === 401) {
      setStatus("error", "Sign in to see this server");
    } else if (error instanceof ApiError && error.httpStatus === 403) {
      // The token is valid but may not read the overview: say so where the user signs in, keep the forms usable.
      setStatus("error", "Signed in · overview refused");
      signIn.show(
        `Signed in as ${tokenSubject(currentToken()) ?? "this token"}, but the overview was refused — ${error}. ` +
          "Actions below still work as far as this token's grants allow; sign in with an admin token to see everything.",
      );
    } else {
      setStatus("error", `Offline · retrying (${error instanceof ApiError ? error.toString() : error.message})`);
    }
    return false;
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
  renderHistory(overview);
  renderTailChoices(overview);
  actions.renderChoices(overview);
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
      h(
        "td",
        { class: "row-actions" },
        h(
          "button",
          {
            type: "button",
            class: "button ghost",
            "aria-label": `Delete topic ${shortName(topic.name)}`,
            onclick: (event) => {
              event.stopPropagation();
              actions.deleteTopic(topic.name);
            },
            onkeydown: (event) => event.stopPropagation(),
          },
          "Delete",
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
          h("th", {}, "Topic"),
          h("th", { class: "num" }, "Publish rate"),
          h("th", { class: "num" }, "Messages"),
          h("th", { class: "num" }, "Size"),
          h("th", { class: "num opt" }, "Offsets"),
          h("th", { class: "opt" }, "Retention"),
          h("th", {}, h("span", { class: "visually-hidden" }, "Actions")),
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
      { "data-subscription": subscription.name },
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
      h(
        "td",
        { class: "row-actions" },
        h(
          "button",
          {
            type: "button",
            class: "button ghost",
            "aria-label": `Delete subscription ${shortName(subscription.name)}`,
            onclick: () => actions.deleteSubscription(subscription.name),
          },
          "Delete",
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
          h("th", {}, "Subscription"),
          h("th", { class: "num" }, "Backlog"),
          h("th", { class: "num" }, "Oldest unacked"),
          h("th", { class: "num opt" }, "Leased"),
          h("th", { class: "num" }, "Dead-lettered"),
          h("th", {}, h("span", { class: "visually-hidden" }, "Actions")),
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

/**
 * The live tail's client: the browser build of streamgate/client this server serves (the same code as the npm
 * package), with this tab's token. Rebuilt when the token changes.
 */
let streams = createStreamClient({ baseUrl: location.origin, transport: "sse", token: currentToken() || undefined });

/** After sign-in or sign-out: a client with the new token, and the tail reopened with it. */
function restartStreams() {
  streams = createStreamClient({ baseUrl: location.origin, transport: "sse", token: currentToken() || undefined });
  if (state.tailTopic) {
    $("tail-rows").replaceChildren();
    openTail();
  }
}

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

const signIn = createSignIn({
  probe: () =>
    api("GET", `/v1/dashboard/overview${state.project ? `?project=${encodeURIComponent(state.project)}` : ""}`),
  changed: () => {
    restartStreams();
    poll();
  },
});
const actions = createActions({
  project: () => state.project,
  useProject: (project) => {
    if (state.project) return;
    state.project = project;
    syncUrl();
  },
  refresh: () => void poll(),
});
poll();
