// Topics of the embedded engine: CRUD, group-committed publishing, log reads, watchers, trimming.
import { validateMessages } from "../../broker/message-limits.js";
import { parseTopicName, validateProjectId } from "../../broker/names.js";
import { decodePageToken, encodePageToken, prefixUpperBound, resolvePageSize } from "../../broker/page-token.js";
import { validateRange } from "../../broker/resource-settings.js";
import type { SubscriptionDispatcher } from "../../broker/subscription-dispatcher.js";
import { applyTopicUpdate, resolveTopic } from "../../broker/topic-settings.js";
import type {
  MessageInput,
  Page,
  PageRequest,
  PublishedRef,
  StoredMessage,
  Topic,
  TopicName,
} from "../../broker/types.js";
import { errors } from "../../errors/index.js";
import type { TopicInit, TopicStats, Update } from "../engine.js";
import type { EmbeddedContext } from "./embedded-context.js";
import type { LogCounters } from "./message-store.js";
import { PublishBatcher, type PublishRequest } from "./publish-batcher.js";
import { RecentMessages } from "./recent-messages.js";

/** A topic in memory: its config, log counters, watchers and the dispatchers of its subscriptions. */
export interface TopicState extends LogCounters {
  config: Topic;
  readonly watchers: Set<(nextOffset: number) => void>;
  readonly dispatchers: Set<SubscriptionDispatcher>;
  /** The newest messages, kept while someone reads the topic live (see {@link RecentMessages}). */
  readonly recent: RecentMessages;
  deleted: boolean;
}

/** One append of {@link TopicCatalog.appendNow}. */
export interface Append {
  topic: TopicState;
  messages: MessageInput[];
}

/** Owns every topic of the engine; all state changes go through it. */
export class TopicCatalog {
  private readonly byName = new Map<string, TopicState>();
  private readonly byId = new Map<number, TopicState>();
  private readonly batcher = new PublishBatcher<TopicState>((requests) => this.commitPublishes(requests));

  constructor(private readonly context: EmbeddedContext) {
    for (const row of context.catalog.loadTopics()) {
      this.add({ ...row, watchers: new Set(), dispatchers: new Set(), recent: new RecentMessages(), deleted: false });
    }
  }

  /** Every live topic. */
  all(): TopicState[] {
    return [...this.byName.values()];
  }

  /**
   * The live topic named `name`.
   * @param field - the request field named when the name is malformed.
   * @throws StreamgateError INVALID_ARGUMENT (malformed) or NOT_FOUND.
   */
  require(name: TopicName, field = "topic"): TopicState {
    const state = this.byName.get(name);
    if (state !== undefined) return state;
    parseTopicName(name, field);
    throw errors.notFound("topic", name);
  }

  byGeneration(id: number): TopicState | undefined {
    return this.byId.get(id);
  }

  create(init: TopicInit): Topic {
    const topic = resolveTopic(init, this.context.now());
    if (this.byName.has(topic.name)) throw errors.alreadyExists("topic", topic.name);
    const id = this.context.catalog.insertTopic(topic);
    this.add({
      id,
      config: topic,
      firstOffset: 1,
      nextOffset: 1,
      bytes: 0,
      lastPublishTimeMs: 0,
      watchers: new Set(),
      dispatchers: new Set(),
      recent: new RecentMessages(),
      deleted: false,
    });
    return structuredClone(topic);
  }

  /** @param check - vets the updated config (its schema settings) before it is stored. */
  update(name: TopicName, update: Update<Topic>, check: (next: Topic, current: Topic) => void = () => {}): Topic {
    const state = this.require(name, "name");
    const next = applyTopicUpdate(state.config, update);
    check(next, state.config);
    this.context.catalog.updateTopic(state.id, next);
    state.config = next;
    return structuredClone(next);
  }

  list(project: string, page: PageRequest): Page<Topic> {
    validateProjectId(project);
    const prefix = `projects/${project}/topics/`;
    const limit = resolvePageSize(page.pageSize);
    const after = decodePageToken(page.pageToken, prefix);
    const items = this.context.catalog.pageTopics({
      after,
      low: prefix,
      high: prefixUpperBound(prefix),
      limit: limit + 1,
    });
    return pageOf(items, limit, (topic) => topic.name);
  }

  /** Removes a topic (its messages are purged in the background); call inside the deleting transaction. */
  remove(state: TopicState): void {
    this.context.catalog.deleteTopic(state.id);
  }

  /** After the deleting transaction committed: forget the topic in memory. */
  forget(state: TopicState): void {
    state.deleted = true;
    state.watchers.clear();
    state.dispatchers.clear();
    this.byName.delete(state.config.name);
    this.byId.delete(state.id);
  }

  /**
   * Validates and queues a publish; resolves once the group commit holding it is durable.
   * @param prepare - checks the messages against the topic's config (its schema) and returns what to store.
   */
  publish(
    name: TopicName,
    messages: MessageInput[],
    prepare: (config: Topic, messages: MessageInput[]) => MessageInput[] = (_config, input) => input,
  ): Promise<PublishedRef[]> {
    const state = this.require(name);
    validateMessages(messages);
    return this.batcher.enqueue(state, prepare(state.config, messages));
  }

  /** Commits every queued publish now. */
  flush(): void {
    this.batcher.flush();
  }

  /**
   * Appends synchronously in one transaction, together with `alsoInTransaction` (e.g. the ack of a
   * dead-lettered message), then notifies dispatchers and watchers.
   */
  appendNow(appends: Append[], alsoInTransaction?: () => void): PublishedRef[][] {
    const { messages } = this.context;
    const drafts = new Map<TopicState, LogCounters>();
    const now = this.context.now();
    const results = messages.transaction(() => {
      const refs = appendByTopic(appends, (topic, batch) => {
        let draft = drafts.get(topic);
        if (draft === undefined) {
          const { id, firstOffset, nextOffset, bytes, lastPublishTimeMs } = topic;
          draft = { id, firstOffset, nextOffset, bytes, lastPublishTimeMs };
          drafts.set(topic, draft);
        }
        return messages.append(draft, batch, now);
      });
      for (const draft of drafts.values()) messages.saveCounters(draft);
      alsoInTransaction?.();
      return refs;
    });
    for (const [topic, draft] of drafts) applyCounters(topic, draft);
    // Every message of a topic in one transaction got the same publish time (the draft's last).
    appends.forEach(({ topic, messages: batch }, index) => {
      if (hasLiveReaders(topic)) topic.recent.append(batch, results[index]!, topic.lastPublishTimeMs);
      else topic.recent.clear();
    });
    for (const topic of drafts.keys()) this.notifyAppend(topic);
    return results;
  }

  read(name: TopicName, fromOffset: number, limit: { maxMessages: number; maxBytes: number }): StoredMessage[] {
    const state = this.require(name);
    validateRange(fromOffset, 0, Number.MAX_SAFE_INTEGER, "from_offset");
    validateRange(limit.maxMessages, 1, Number.MAX_SAFE_INTEGER, "max_messages");
    validateRange(limit.maxBytes, 1, Number.MAX_SAFE_INTEGER, "max_bytes");
    if (fromOffset >= state.nextOffset) return [];
    const recent = state.recent.read(Math.max(fromOffset, state.firstOffset), limit.maxMessages, limit.maxBytes);
    if (recent !== null) return recent;
    return this.context.messages.read(
      state.id,
      Math.max(fromOffset, state.firstOffset),
      limit.maxMessages,
      limit.maxBytes,
    );
  }

  offsetAtTime(name: TopicName, timeMs: number): number {
    const state = this.require(name);
    if (typeof timeMs !== "number" || Number.isNaN(timeMs))
      throw errors.invalidArgument("time", "must be a number of ms");
    return this.context.messages.offsetAtTime(state, timeMs);
  }

  stats(name: TopicName): TopicStats {
    const { firstOffset, nextOffset, bytes } = this.require(name);
    return { firstOffset, nextOffset, messages: nextOffset - firstOffset, bytes };
  }

  watch(name: TopicName, listener: (nextOffset: number) => void): () => void {
    const state = this.require(name);
    state.watchers.add(listener);
    return () => state.watchers.delete(listener);
  }

  /** Deletes messages below `offset` (retention) in one transaction and tells the subscriptions. */
  trim(state: TopicState, offset: number): void {
    const { messages } = this.context;
    const { id, firstOffset, nextOffset, bytes, lastPublishTimeMs } = state;
    const draft: LogCounters = { id, firstOffset, nextOffset, bytes, lastPublishTimeMs };
    messages.transaction(() => {
      messages.trimBefore(draft, offset);
      messages.saveCounters(draft);
    });
    applyCounters(state, draft);
    state.recent.dropBefore(state.firstOffset);
    for (const dispatcher of state.dispatchers) dispatcher.dropBefore(state.firstOffset);
  }

  private add(state: TopicState): void {
    this.byName.set(state.config.name, state);
    this.byId.set(state.id, state);
  }

  private commitPublishes(requests: PublishRequest<TopicState>[]): void {
    const live = requests.filter((request) => {
      if (!request.target.deleted) return true;
      request.reject(errors.notFound("topic", request.target.config.name));
      return false;
    });
    const results = this.appendNow(live.map((request) => ({ topic: request.target, messages: request.messages })));
    for (const [index, request] of live.entries()) request.resolve(results[index]!);
  }

  private notifyAppend(state: TopicState): void {
    for (const dispatcher of state.dispatchers) dispatcher.onAppend(state.nextOffset);
    for (const listener of [...state.watchers]) {
      try {
        listener(state.nextOffset);
      } catch (error) {
        process.emitWarning(`streamgate: a watchTopic listener of ${state.config.name} threw: ${String(error)}`);
      }
    }
  }
}

/** Builds a page from `limit + 1` rows: the extra row only says there is a next page. */
export function pageOf<T>(rows: T[], limit: number, nameOf: (item: T) => string): Page<T> {
  if (rows.length <= limit) return { items: rows, nextPageToken: "" };
  const items = rows.slice(0, limit);
  return { items, nextPageToken: encodePageToken(nameOf(items[items.length - 1]!)) };
}

/**
 * Runs `append` once per topic of `appends` with all of that topic's messages, in order, and hands each append
 * its own refs back. A group commit of 16 one-message Publish calls to one topic is then one 16-row INSERT
 * instead of 16 one-row INSERTs: the same rows, offsets and publish
 * time (every message of a topic in one transaction gets the same), a fifth of the statement executions' cost.
 */
export function appendByTopic(
  appends: readonly Append[],
  append: (topic: TopicState, messages: MessageInput[]) => PublishedRef[],
): PublishedRef[][] {
  if (appends.length === 1) return [append(appends[0]!.topic, appends[0]!.messages)];
  const byTopic = new Map<TopicState, number[]>();
  appends.forEach(({ topic }, index) => {
    const indexes = byTopic.get(topic);
    if (indexes === undefined) byTopic.set(topic, [index]);
    else indexes.push(index);
  });
  const results: PublishedRef[][] = new Array(appends.length);
  for (const [topic, indexes] of byTopic) {
    if (indexes.length === 1) {
      results[indexes[0]!] = append(topic, appends[indexes[0]!]!.messages);
      continue;
    }
    const all: MessageInput[] = [];
    for (const index of indexes) for (const message of appends[index]!.messages) all.push(message);
    const refs = append(topic, all);
    let start = 0;
    for (const index of indexes) {
      const count = appends[index]!.messages.length;
      results[index] = refs.slice(start, start + count);
      start += count;
    }
  }
  return results;
}

/** True while a stream, a waiting pull or a watcher reads the topic: only then are its newest messages kept. */
function hasLiveReaders(state: TopicState): boolean {
  if (state.watchers.size > 0) return true;
  for (const dispatcher of state.dispatchers) if (dispatcher.hasConsumers) return true;
  return false;
}

function applyCounters(state: TopicState, draft: LogCounters): void {
  state.firstOffset = draft.firstOffset;
  state.nextOffset = draft.nextOffset;
  state.bytes = draft.bytes;
  state.lastPublishTimeMs = draft.lastPublishTimeMs;
}
