// Types of scripts/browser-client.mjs, for the TypeScript that imports it (tests, the dashboard running from sources).

/** Where the build writes the browser bundle, relative to the package root. */
export declare const BROWSER_CLIENT_FILE: string;

/** Bundles `<root>/src/client/index.ts` into one browser ES module; writes it to `outFile` when given; resolves its text. */
export declare function bundleBrowserClient(root: string, options?: { outFile?: string }): Promise<string>;
