// Pub/Sub REST calls from tests: one through fetch, one through the curl binary, both returning status + JSON.
import { execFile, execFileSync } from "node:child_process";

/** What a REST call returned. */
export interface RestResponse {
  status: number;
  /** Parsed JSON body; undefined when the body is empty. */
  body: unknown;
  /** Raw body text. */
  text: string;
}

/** Loose JSON object view for assertions. */
export type Json = Record<string, unknown>;

/**
 * fetch() with `connection: close`: undici otherwise keeps idle sockets for seconds, and the test server's
 * close() would (rightly) report them as leaked connections.
 */
export async function fetchJson(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
  options: { rawBody?: string; timeoutMs?: number; headers?: Record<string, string> } = {},
): Promise<RestResponse> {
  const payload = options.rawBody ?? (body === undefined ? undefined : JSON.stringify(body));
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: {
      connection: "close",
      ...(payload === undefined ? {} : { "content-type": "application/json" }),
      ...options.headers,
    },
    body: payload,
    signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? undefined : JSON.parse(text), text };
}

/** The curl binary's version line, or null when it is not installed. */
export function curlVersion(): string | null {
  try {
    return execFileSync("curl", ["--version"], { encoding: "utf8" }).split("\n")[0] ?? null;
  } catch {
    return null;
  }
}

/**
 * Runs `curl -sS` for one request; the status comes from `-w %{http_code}` on a line of its own.
 * @param extraArgs - e.g. ["--http2-prior-knowledge"].
 */
export function curlJson(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
  extraArgs: string[] = [],
): Promise<RestResponse> {
  const args = ["-sS", "--max-time", "20", "-X", method, "-w", "\n%{http_code}", ...extraArgs];
  if (body !== undefined) args.push("-H", "content-type: application/json", "--data-binary", JSON.stringify(body));
  args.push(`${baseUrl}${path}`);
  return new Promise((resolve, reject) => {
    execFile("curl", args, { encoding: "utf8", timeout: 25_000 }, (error, stdout, stderr) => {
      if (error !== null) {
        reject(new Error(`curl ${args.join(" ")} failed: ${error.message} ${stderr}`));
        return;
      }
      const split = stdout.lastIndexOf("\n");
      const text = stdout.slice(0, split);
      const status = Number(stdout.slice(split + 1));
      try {
        resolve({ status, body: text === "" ? undefined : JSON.parse(text), text });
      } catch (parseError) {
        reject(
          new Error(`curl got status ${status} with a non-JSON body ${JSON.stringify(text)}: ${String(parseError)}`),
        );
      }
    });
  });
}
