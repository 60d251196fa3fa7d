// The Pub/Sub v1 REST routes: HTTP method + path template -> RPC method and how path parameters fill the request.
import type { DescMethod } from "@bufbuild/protobuf";
import { Publisher, Subscriber } from "../../gen/google/pubsub/v1/pubsub_pb.js";
import { checkPublishData } from "./strict-base64.js";

/** One REST route of the Pub/Sub API. */
export interface RestRoute {
  httpMethod: "GET" | "PUT" | "POST" | "PATCH" | "DELETE";
  /** Matches the URL path; named groups are project, topic, subscription, snapshot. */
  pattern: RegExp;
  rpc: DescMethod;
  /** Builds the request JSON from the resource name, the body and the query. */
  request(
    name: string,
    project: string,
    body: Record<string, unknown>,
    query: URLSearchParams,
  ): Record<string, unknown>;
}

const id = "[^/:]+";
const topicPath = new RegExp(`^/v1/(?<name>projects/(?<project>${id})/topics/${id})`);
const subscriptionPath = new RegExp(`^/v1/(?<name>projects/(?<project>${id})/subscriptions/${id})`);
const snapshotPath = new RegExp(`^/v1/(?<name>projects/(?<project>${id})/snapshots/${id})`);
const projectPath = new RegExp(`^/v1/(?<name>projects/(?<project>${id}))`);

const suffix = (base: RegExp, tail: string) => new RegExp(`${base.source}${tail}$`);
const listing = (query: URLSearchParams) => ({
  pageSize: Number(query.get("pageSize") ?? 0),
  pageToken: query.get("pageToken") ?? "",
});
const method = (service: typeof Publisher | typeof Subscriber, name: string): DescMethod => {
  const found = service.methods.find((m) => m.localName === name);
  if (found === undefined) throw new Error(`no method ${name}`);
  return found;
};
/**
 * A short id in a body field (`"topic": "orders"`) as the full name in the path's project, so REST bodies take the
 * same short names as the CLI and the live streams; full names and non-strings are left for the service to check.
 */
const expand = (value: unknown, project: string, kind: string): unknown =>
  typeof value === "string" && value !== "" && !value.includes("/") ? `projects/${project}/${kind}/${value}` : value;
const expandField = (body: Record<string, unknown>, field: string, project: string, kind: string) =>
  field in body ? { ...body, [field]: expand(body[field], project, kind) } : body;
const withDeadLetterTopic = (body: Record<string, unknown>, project: string): Record<string, unknown> => {
  const policy = body.deadLetterPolicy;
  if (policy === null || typeof policy !== "object" || Array.isArray(policy)) return body;
  return {
    ...body,
    deadLetterPolicy: expandField(policy as Record<string, unknown>, "deadLetterTopic", project, "topics"),
  };
};
const P = (name: string) => method(Publisher, name);
const S = (name: string) => method(Subscriber, name);

/** Every Pub/Sub REST route, in matching order. */
export const pubsubRoutes: RestRoute[] = [
  {
    httpMethod: "GET",
    pattern: suffix(projectPath, "/topics"),
    rpc: P("listTopics"),
    request: (n, _p, _b, q) => ({ project: n, ...listing(q) }),
  },
  {
    httpMethod: "GET",
    pattern: suffix(topicPath, "/subscriptions"),
    rpc: P("listTopicSubscriptions"),
    request: (n, _p, _b, q) => ({ topic: n, ...listing(q) }),
  },
  {
    httpMethod: "GET",
    pattern: suffix(topicPath, "/snapshots"),
    rpc: P("listTopicSnapshots"),
    request: (n, _p, _b, q) => ({ topic: n, ...listing(q) }),
  },
  {
    httpMethod: "POST",
    pattern: suffix(topicPath, ":publish"),
    rpc: P("publish"),
    request: (n, _p, b) => {
      checkPublishData(b);
      return { ...b, topic: n };
    },
  },
  {
    httpMethod: "PUT",
    pattern: suffix(topicPath, ""),
    rpc: P("createTopic"),
    request: (n, _p, b) => ({ ...b, name: n }),
  },
  { httpMethod: "GET", pattern: suffix(topicPath, ""), rpc: P("getTopic"), request: (n) => ({ topic: n }) },
  {
    httpMethod: "PATCH",
    pattern: suffix(topicPath, ""),
    rpc: P("updateTopic"),
    request: (n, _p, b) => withName(b, "topic", n),
  },
  { httpMethod: "DELETE", pattern: suffix(topicPath, ""), rpc: P("deleteTopic"), request: (n) => ({ topic: n }) },
  {
    httpMethod: "GET",
    pattern: suffix(projectPath, "/subscriptions"),
    rpc: S("listSubscriptions"),
    request: (n, _p, _b, q) => ({ project: n, ...listing(q) }),
  },
  {
    httpMethod: "POST",
    pattern: suffix(subscriptionPath, ":detach"),
    rpc: P("detachSubscription"),
    request: (n) => ({ subscription: n }),
  },
  {
    httpMethod: "POST",
    pattern: suffix(subscriptionPath, ":pull"),
    rpc: S("pull"),
    request: (n, _p, b) => ({ ...b, subscription: n }),
  },
  {
    httpMethod: "POST",
    pattern: suffix(subscriptionPath, ":acknowledge"),
    rpc: S("acknowledge"),
    request: (n, _p, b) => ({ ...b, subscription: n }),
  },
  {
    httpMethod: "POST",
    pattern: suffix(subscriptionPath, ":modifyAckDeadline"),
    rpc: S("modifyAckDeadline"),
    request: (n, _p, b) => ({ ...b, subscription: n }),
  },
  {
    httpMethod: "POST",
    pattern: suffix(subscriptionPath, ":modifyPushConfig"),
    rpc: S("modifyPushConfig"),
    request: (n, _p, b) => ({ ...b, subscription: n }),
  },
  {
    httpMethod: "POST",
    pattern: suffix(subscriptionPath, ":seek"),
    rpc: S("seek"),
    request: (n, p, b) => ({ ...expandField(b, "snapshot", p, "snapshots"), subscription: n }),
  },
  {
    httpMethod: "PUT",
    pattern: suffix(subscriptionPath, ""),
    rpc: S("createSubscription"),
    request: (n, p, b) => ({ ...expandField(withDeadLetterTopic(b, p), "topic", p, "topics"), name: n }),
  },
  {
    httpMethod: "GET",
    pattern: suffix(subscriptionPath, ""),
    rpc: S("getSubscription"),
    request: (n) => ({ subscription: n }),
  },
  {
    httpMethod: "PATCH",
    pattern: suffix(subscriptionPath, ""),
    rpc: S("updateSubscription"),
    request: (n, _p, b) => withName(b, "subscription", n),
  },
  {
    httpMethod: "DELETE",
    pattern: suffix(subscriptionPath, ""),
    rpc: S("deleteSubscription"),
    request: (n) => ({ subscription: n }),
  },
  {
    httpMethod: "GET",
    pattern: suffix(projectPath, "/snapshots"),
    rpc: S("listSnapshots"),
    request: (n, _p, _b, q) => ({ project: n, ...listing(q) }),
  },
  {
    httpMethod: "PUT",
    pattern: suffix(snapshotPath, ""),
    rpc: S("createSnapshot"),
    request: (n, p, b) => ({ ...expandField(b, "subscription", p, "subscriptions"), name: n }),
  },
  { httpMethod: "GET", pattern: suffix(snapshotPath, ""), rpc: S("getSnapshot"), request: (n) => ({ snapshot: n }) },
  {
    httpMethod: "PATCH",
    pattern: suffix(snapshotPath, ""),
    rpc: S("updateSnapshot"),
    request: (n, _p, b) => withName(b, "snapshot", n),
  },
  {
    httpMethod: "DELETE",
    pattern: suffix(snapshotPath, ""),
    rpc: S("deleteSnapshot"),
    request: (n) => ({ snapshot: n }),
  },
];

/** PATCH bodies are `{topic: {...}, updateMask}`; the path names the resource. */
function withName(body: Record<string, unknown>, key: string, name: string): Record<string, unknown> {
  const inner = body[key];
  const resource = typeof inner === "object" && inner !== null ? { ...(inner as Record<string, unknown>) } : {};
  return { ...body, [key]: { ...resource, name } };
}
