// The dashboard's session and calls: a bearer token kept in sessionStorage (this tab only), and fetch wrappers that
// send it and turn the server's JSON errors ({error: {code, message, status}}) into ApiError.

const TOKEN_KEY = "streamgate.dashboard.token";

/** The token of this tab, or "" when signed out. */
export function currentToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? "";
  } catch {
    return "";
  }
}

export function storeToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** The `sub` claim of a JWT, for display only (the server verifies the token; the page never trusts this). */
export function tokenSubject(token) {
  try {
    const payload = token.split(".")[1] ?? "";
    const json = atob(
      payload
        .replace(/-/g, "+")
        .replace(/_/g, "/")
        .padEnd(Math.ceil(payload.length / 4) * 4, "="),
    );
    const claims = JSON.parse(json);
    return typeof claims.sub === "string" && claims.sub !== "" ? claims.sub : null;
  } catch {
    return null;
  }
}

/** A refused call: the HTTP status, the gRPC status name (`PERMISSION_DENIED`) and the server's message. */
export class ApiError extends Error {
  constructor(httpStatus, status, message) {
    super(message);
    this.name = "ApiError";
    this.httpStatus = httpStatus;
    this.status = status;
  }
  /** What a form shows: `PERMISSION_DENIED: topic … needs …`. */
  toString() {
    return `${this.status}: ${this.message}`;
  }
}

/** Listeners told when a call is refused with 401 (no token, or one the server does not accept): the sign-in panel. */
const authFailureListeners = new Set();
export function onAuthFailure(listener) {
  authFailureListeners.add(listener);
}

/**
 * Calls the server with this tab's token. Resolves the JSON body; rejects with ApiError (and tells the auth-failure
 * listeners about a 401), or with a network error as ApiError UNAVAILABLE. A 403 stays with the caller: the form
 * that failed shows it.
 */
export async function api(method, path, body) {
  const headers = { accept: "application/json" };
  const token = currentToken();
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (error) {
    throw new ApiError(0, "UNAVAILABLE", `the server did not answer (${error.message})`);
  }
  const text = await response.text();
  let json = null;
  try {
    json = text === "" ? {} : JSON.parse(text);
  } catch {
    // not JSON: reported below with the status
  }
  if (response.ok) return json ?? {};
  const error =
    json?.error !== undefined
      ? new ApiError(response.status, json.error.status ?? `HTTP ${response.status}`, json.error.message ?? "")
      : new ApiError(response.status, `HTTP ${response.status}`, text.slice(0, 200) || response.statusText);
  if (response.status === 401) {
    for (const listener of authFailureListeners) listener(error, path);
  }
  throw error;
}
