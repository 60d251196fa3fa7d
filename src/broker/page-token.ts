// Listing pages: page size defaults and opaque page tokens (the last name of the previous page).
import { errors } from "../errors/index.js";

/** Page size when the request leaves it 0, and the largest page served, as in Pub/Sub. */
export const PAGE_SIZE = { default: 100, max: 1000 } as const;

/**
 * The effective page size: 0 means {@link PAGE_SIZE.default}; larger than the maximum is clamped.
 * @throws StreamgateError INVALID_ARGUMENT for a negative or fractional size.
 */
export function resolvePageSize(pageSize: number): number {
  if (!Number.isInteger(pageSize) || pageSize < 0) {
    throw errors.invalidArgument("page_size", `must be a non-negative integer, got ${String(pageSize)}`);
  }
  if (pageSize === 0) return PAGE_SIZE.default;
  return Math.min(pageSize, PAGE_SIZE.max);
}

/** The token that resumes a listing after `lastName` (base64url, opaque to clients). */
export function encodePageToken(lastName: string): string {
  return Buffer.from(`v1:${lastName}`, "utf8").toString("base64url");
}

/**
 * The name a listing resumes after; "" for the first page.
 * @param prefix - names in this listing start with it; a token for another listing is rejected.
 * @throws StreamgateError INVALID_ARGUMENT naming `page_token`.
 */
export function decodePageToken(pageToken: string, prefix: string): string {
  if (pageToken === "" || pageToken === undefined) return "";
  const decoded = /^[A-Za-z0-9_-]+$/.test(pageToken) ? Buffer.from(pageToken, "base64url").toString("utf8") : "";
  if (!decoded.startsWith("v1:") || !decoded.slice(3).startsWith(prefix)) {
    throw errors.invalidArgument("page_token", `invalid page token ${JSON.stringify(pageToken)}`);
  }
  return decoded.slice(3);
}

/** The exclusive upper bound of names starting with `prefix` (which ends with "/"), for range scans. */
export function prefixUpperBound(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}
