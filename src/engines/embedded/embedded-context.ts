// What the embedded engine's catalogs share: the stores, the options and the clock.
import type { CatalogStore } from "./catalog-store.js";
import type { ResolvedEmbeddedEngineOptions } from "./embedded-engine-options.js";
import type { MessageStore } from "./message-store.js";

/** Shared by the topic, subscription and snapshot catalogs and the maintenance sweeper. */
export interface EmbeddedContext {
  readonly catalog: CatalogStore;
  readonly messages: MessageStore;
  readonly options: ResolvedEmbeddedEngineOptions;
  /** The engine's clock (options.now). */
  now(): number;
}
