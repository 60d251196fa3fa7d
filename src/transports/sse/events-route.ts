// Parses a topic events request (path, position, filter) shared by the SSE stream and the long poll.
import type { StreamPosition, TopicName } from "../../broker/types.js";
import { errors } from "../../errors/index.js";
import { type AnyRequest, requestUrl } from "../../http/index.js";
import { parseOffset, parseStreamPosition } from "../../streams/index.js";

/** The events path of a topic; the edge's route table and `matchEventsPath` share it. */
export const EVENTS_PATH = /^\/v1\/projects\/([^/]+)\/topics\/([^/]+)\/events$/;

export interface EventsRequest {
  topic: TopicName;
  from: StreamPosition;
  filter: string;
  query: URLSearchParams;
}

/** The topic of an events path, or null when the path is not an events path. */
export function matchEventsPath(path: string): TopicName | null {
  const match = EVENTS_PATH.exec(path);
  if (match === null) return null;
  let project: string;
  let topic: string;
  try {
    project = decodeURIComponent(match[1]!);
    topic = decodeURIComponent(match[2]!);
  } catch {
    throw errors.invalidArgument("name", "the path is not valid percent-encoding");
  }
  return `projects/${project}/topics/${topic}`;
}

/**
 * Reads position and filter: `Last-Event-ID` (header, or `lastEventId` query parameter for
 * clients that cannot set headers) wins over `from`, and means "after this offset".
 * @throws StreamgateError INVALID_ARGUMENT for a bad offset, time or position.
 */
export function parseEventsRequest(request: AnyRequest, topic: TopicName): EventsRequest {
  const query = requestUrl(request).searchParams;
  const header = request.headers["last-event-id"];
  const lastEventId = (Array.isArray(header) ? header[0] : header) ?? query.get("lastEventId") ?? undefined;
  const filter = query.get("filter") ?? "";
  if (lastEventId !== undefined && lastEventId.trim() !== "") {
    const offset = parseOffset(lastEventId, "Last-Event-ID");
    return { topic, from: { kind: "after", offset }, filter, query };
  }
  return { topic, from: parseStreamPosition(query.get("from") ?? "latest", "from"), filter, query };
}
