// The dashboard's actions, each one call of the server's Pub/Sub REST API (so the page does nothing the API cannot):
// create/delete topics, subscriptions and snapshots, publish, pull with ack/nack, seek. Errors show in the form.
import { ApiError, api } from "./api.js";
import { $, emptyState, formatNumber, h, setOptions, shortName } from "./dom.js";

/** `projects/p/topics/t` from a short ID (current project) or a full name as typed. */
function resourceName(kind, value, project) {
  const text = value.trim();
  if (text.startsWith("projects/")) return text;
  return `projects/${project}/${kind}/${text}`;
}

/** REST path of a resource name: each segment URL-encoded. */
const restPath = (name) => `/v1/${name.split("/").map(encodeURIComponent).join("/")}`;

/** Shows a form's outcome in its message line: an error (role alert, the server's status and message) or success. */
function report(form, outcome) {
  const line = form.querySelector(".form-message");
  if (outcome instanceof Error) {
    line.dataset.kind = "error";
    line.setAttribute("role", "alert");
    line.textContent = outcome instanceof ApiError ? outcome.toString() : `ERROR: ${outcome.message}`;
  } else {
    line.dataset.kind = "ok";
    line.setAttribute("role", "status");
    line.textContent = outcome;
  }
}

/** Runs `work` for a submitted form: disables its button meanwhile and reports success text or the error. */
function handleSubmit(form, work) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    try {
      report(form, await work(new FormData(form)));
    } catch (error) {
      report(form, error);
    } finally {
      button.disabled = false;
      form.removeAttribute("aria-busy");
    }
  });
}

const utf8 = new TextEncoder();
const base64Of = (text) => {
  let binary = "";
  for (const byte of utf8.encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
};
const textOf = (base64) => {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)));
  } catch {
    return `binary · ${base64.slice(0, 48)}`;
  }
};

/** `key=value` per line (blank lines ignored) → attributes; a line without `=` is a mistake to report. */
function parseAttributes(text) {
  const attributes = {};
  for (const [index, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "") continue;
    const equals = line.indexOf("=");
    if (equals <= 0) throw new Error(`attributes line ${index + 1}: write key=value, got ${JSON.stringify(line)}`);
    attributes[line.slice(0, equals).trim()] = line.slice(equals + 1).trim();
  }
  return attributes;
}

/** Wires every action form. `context`: project() → the current project, refresh() → poll the overview now. */
export function createActions(context) {
  const project = () => context.project() || $("create-topic-project").value.trim() || "default";

  handleSubmit($("create-topic-form"), async (data) => {
    const typedProject = String(data.get("project")).trim();
    const name = resourceName("topics", String(data.get("topic")), typedProject || project());
    await api("PUT", restPath(name), {});
    context.useProject(name.split("/")[1]);
    context.refresh();
    return `Created topic ${name}`;
  });

  handleSubmit($("create-subscription-form"), async (data) => {
    const name = resourceName("subscriptions", String(data.get("subscription")), project());
    const body = {
      topic: resourceName("topics", String(data.get("topic")), project()),
      ackDeadlineSeconds: Number(data.get("ackDeadlineSeconds") || 10),
      enableMessageOrdering: data.get("enableMessageOrdering") === "on",
      retainAckedMessages: data.get("retainAckedMessages") === "on",
    };
    const filter = String(data.get("filter") ?? "").trim();
    if (filter) body.filter = filter;
    await api("PUT", restPath(name), body);
    context.refresh();
    return `Created subscription ${name}`;
  });

  handleSubmit($("publish-form"), async (data) => {
    const topic = resourceName("topics", String(data.get("topic")), project());
    const message = { data: base64Of(String(data.get("data") ?? "")) };
    const attributes = parseAttributes(String(data.get("attributes") ?? ""));
    if (Object.keys(attributes).length > 0) message.attributes = attributes;
    const orderingKey = String(data.get("orderingKey") ?? "").trim();
    if (orderingKey) message.orderingKey = orderingKey;
    const result = await api("POST", `${restPath(topic)}:publish`, { messages: [message] });
    context.refresh();
    return `Published message ${result.messageIds?.[0] ?? "?"} to ${shortName(topic)}`;
  });

  // ---- pull, ack, nack -------------------------------------------------------------------------

  /** The subscription the shown messages were pulled from (ack and nack go to it). */
  let pulledFrom = "";
  const pulledList = $("pulled");

  const settle = async (row, ackIds, action) => {
    const form = $("pull-form");
    try {
      if (action === "ack") await api("POST", `${restPath(pulledFrom)}:acknowledge`, { ackIds });
      else await api("POST", `${restPath(pulledFrom)}:modifyAckDeadline`, { ackIds, ackDeadlineSeconds: 0 });
      for (const one of row ? [row] : pulledList.querySelectorAll("li[data-state=pulled]")) {
        one.dataset.state = action === "ack" ? "acked" : "nacked";
        one.querySelector(".pulled-state").textContent = action === "ack" ? "acked" : "nacked · redelivered soon";
        for (const button of one.querySelectorAll("button")) button.disabled = true;
      }
      report(form, `${action === "ack" ? "Acknowledged" : "Nacked"} ${ackIds.length} message(s)`);
      context.refresh();
    } catch (error) {
      report(form, error);
    }
  };

  handleSubmit($("pull-form"), async (data) => {
    const subscription = resourceName("subscriptions", String(data.get("subscription")), project());
    const result = await api("POST", `${restPath(subscription)}:pull`, {
      maxMessages: Number(data.get("maxMessages") || 10),
      returnImmediately: true,
    });
    pulledFrom = subscription;
    const messages = result.receivedMessages ?? [];
    pulledList.replaceChildren(
      ...messages.map((received) => {
        const message = received.message ?? {};
        const attributes = Object.entries(message.attributes ?? {});
        const row = h(
          "li",
          { class: "pulled-row", "data-state": "pulled", "data-message-id": message.messageId },
          h("span", { class: "pulled-id" }, `#${message.messageId}`),
          h("span", { class: "data" }, textOf(message.data ?? "")),
          h(
            "span",
            { class: "attrs" },
            message.orderingKey
              ? h("span", { class: "attr" }, h("b", {}, "orderingKey"), `=${message.orderingKey}`)
              : null,
            attributes.map(([key, value]) => h("span", { class: "attr" }, h("b", {}, key), `=${value}`)),
          ),
          // Pub/Sub sets deliveryAttempt only on subscriptions with a dead-letter policy.
          received.deliveryAttempt ? h("span", { class: "muted" }, `attempt ${received.deliveryAttempt}`) : null,
          h("span", { class: "pulled-state muted" }, "leased"),
          h(
            "span",
            { class: "row-actions" },
            h("button", { type: "button", class: "button", "aria-label": `Ack message ${message.messageId}` }, "Ack"),
            h(
              "button",
              { type: "button", class: "button ghost", "aria-label": `Nack message ${message.messageId}` },
              "Nack",
            ),
          ),
        );
        const [ack, nack] = row.querySelectorAll("button");
        ack.addEventListener("click", () => settle(row, [received.ackId], "ack"));
        nack.addEventListener("click", () => settle(row, [received.ackId], "nack"));
        row.ackId = received.ackId;
        return row;
      }),
    );
    $("pull-ack-all").hidden = messages.length === 0;
    return messages.length === 0
      ? `No messages waiting on ${shortName(subscription)}`
      : `Pulled ${formatNumber(messages.length)} message(s) from ${shortName(subscription)}: ack or nack each`;
  });
  $("pull-ack-all").addEventListener("click", () => {
    const rows = [...pulledList.querySelectorAll("li[data-state=pulled]")];
    if (rows.length > 0)
      settle(
        null,
        rows.map((row) => row.ackId),
        "ack",
      );
  });

  // ---- seek and snapshots ----------------------------------------------------------------------

  const seekForm = $("seek-form");
  const syncSeekTarget = () => {
    const toTime = seekForm.querySelector("input[name=target]:checked")?.value !== "snapshot";
    $("seek-time-field").hidden = !toTime;
    $("seek-snapshot-field").hidden = toTime;
  };
  for (const radio of seekForm.querySelectorAll("input[name=target]")) radio.addEventListener("change", syncSeekTarget);
  syncSeekTarget();

  handleSubmit(seekForm, async (data) => {
    const subscription = resourceName("subscriptions", String(data.get("subscription")), project());
    if (data.get("target") === "snapshot") {
      const snapshot = String(data.get("snapshot") ?? "");
      if (!snapshot) throw new Error("choose a snapshot to seek to (create one below)");
      await api("POST", `${restPath(subscription)}:seek`, { snapshot: resourceName("snapshots", snapshot, project()) });
      context.refresh();
      return `Seeked ${shortName(subscription)} to snapshot ${shortName(snapshot)}`;
    }
    const local = String(data.get("time") ?? "");
    const time = new Date(local);
    if (!local || Number.isNaN(time.getTime())) throw new Error("enter the time to seek to");
    await api("POST", `${restPath(subscription)}:seek`, { time: time.toISOString() });
    context.refresh();
    return `Seeked ${shortName(subscription)} to ${time.toISOString()}`;
  });

  handleSubmit($("snapshot-form"), async (data) => {
    const name = resourceName("snapshots", String(data.get("snapshot")), project());
    const subscription = resourceName("subscriptions", String(data.get("subscription")), project());
    await api("PUT", restPath(name), { subscription });
    await refreshSnapshots();
    return `Created snapshot ${shortName(name)} of ${shortName(subscription)}`;
  });

  /** The project's snapshots: the list under the form and the seek form's choices. */
  const refreshSnapshots = async () => {
    const current = context.project();
    const list = $("snapshots");
    if (!current) {
      list.replaceChildren(emptyState("No snapshots", "Snapshots of this project's subscriptions show here."));
      return;
    }
    let snapshots;
    try {
      snapshots =
        (await api("GET", `/v1/projects/${encodeURIComponent(current)}/snapshots?pageSize=200`)).snapshots ?? [];
    } catch (error) {
      list.replaceChildren(h("p", { class: "form-message", "data-kind": "error", role: "alert" }, String(error)));
      return;
    }
    setOptions(
      $("seek-snapshot"),
      snapshots.map((snapshot) => [snapshot.name, shortName(snapshot.name)]),
      snapshots.length === 0 ? "no snapshots yet" : "Choose a snapshot…",
    );
    if (snapshots.length === 0) {
      list.replaceChildren(emptyState("No snapshots", "Create one above; then seek a subscription back to it."));
      return;
    }
    list.replaceChildren(
      h(
        "ul",
        { class: "snapshot-list" },
        snapshots.map((snapshot) =>
          h(
            "li",
            { "data-snapshot": snapshot.name },
            h("span", { class: "name" }, shortName(snapshot.name)),
            h(
              "span",
              { class: "muted" },
              ` of ${shortName(snapshot.topic ?? "")} · expires ${snapshot.expireTime ?? "–"}`,
            ),
            h(
              "button",
              {
                type: "button",
                class: "button ghost",
                "aria-label": `Delete snapshot ${shortName(snapshot.name)}`,
                onclick: () => deleteResource("snapshot", snapshot.name, $("snapshot-form")).then(refreshSnapshots),
              },
              "Delete",
            ),
          ),
        ),
      ),
    );
  };

  /** Deletes after the user confirms; the outcome shows in `form`'s message line. */
  const deleteResource = async (kind, name, form) => {
    if (!confirm(`Delete ${kind} ${name}?`)) return;
    try {
      await api("DELETE", restPath(name));
      report(form, `Deleted ${kind} ${name}`);
      context.refresh();
    } catch (error) {
      report(form, error);
    }
  };

  return {
    refreshSnapshots,
    deleteTopic: (name) => deleteResource("topic", name, $("create-topic-form")),
    deleteSubscription: (name) => deleteResource("subscription", name, $("create-subscription-form")),
    /** Fills the forms' topic and subscription choices from an overview. */
    renderChoices(overview) {
      const topics = overview.topics.map((topic) => [shortName(topic.name), topic.name]);
      const subscriptions = overview.subscriptions.map((sub) => [shortName(sub.name), sub.name]);
      for (const [id, items] of [
        ["topic-names", topics],
        ["subscription-names", subscriptions],
      ]) {
        const list = $(id);
        const wanted = items.map(([value]) => value).join("\n");
        if ([...list.options].map((option) => option.value).join("\n") !== wanted) {
          list.replaceChildren(...items.map(([value, label]) => h("option", { value }, label)));
        }
      }
      if (!$("create-topic-project").value && overview.project) $("create-topic-project").value = overview.project;
    },
  };
}
