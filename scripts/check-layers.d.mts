// Types of scripts/check-layers.mjs, for the test that drives it.

/** A layer: its kind and, for a transport, which one (`transports/sse`). */
export interface Layer {
  kind: "core" | "transport" | "edge" | "server" | "tunnel";
  name: string;
}

/** One forbidden import. */
export interface LayerViolation {
  /** The importing file, relative to src/. */
  file: string;
  /** The imported file, relative to src/. */
  imported: string;
  /** The rule's name (`core-is-neutral`, `transports-apart`, `tunnel-no-server`). */
  rule: string;
  /** The rule in words. */
  text: string;
}

/** The layer of a path relative to src/, or null when no rule concerns it. */
export declare function layerOf(file: string): Layer | null;

/** Every forbidden edge of a dependency graph (`{ file: [imported files] }`, paths relative to src/). */
export declare function findLayerViolations(graph: Record<string, string[]>): LayerViolation[];

/** One line naming the importing file, the imported file and the rule. */
export declare function formatViolation(violation: LayerViolation): string;

/** Builds the import graph of `srcDir` with madge and returns its violations. */
export declare function checkLayers(srcDir: string, tsConfig: string): Promise<LayerViolation[]>;
