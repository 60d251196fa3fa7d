// One streamgate process per data dir: an exclusive SQLite lock on a small file beside the database.
//
// The database itself is opened in SQLite's normal locking mode, so that a second connection (the WAL checkpointer's
// worker thread) can share it; the lock that keeps other processes out lives on its own file instead.
import { join } from "node:path";
import Database from "better-sqlite3";
import { Code, StreamgateError } from "../../errors/index.js";

/** The lock file inside the data dir (named after the database, so tools treating `streamgate.db*` as one set see it). */
export const LOCK_FILE_NAME = "streamgate.db-lock";

/** A held data dir lock. */
export interface DataDirLock {
  /** Releases the lock. Idempotent. */
  release(): void;
}

/**
 * Takes the data dir's lock, held until {@link DataDirLock.release} or the process ends.
 * @throws StreamgateError FAILED_PRECONDITION when another process (or another engine in this one) holds it.
 */
export function lockDataDir(dataDir: string): DataDirLock {
  const lock = new Database(join(dataDir, LOCK_FILE_NAME), { timeout: 250 });
  try {
    // In exclusive locking mode the lock a write transaction takes is kept until the connection closes.
    lock.pragma("locking_mode = EXCLUSIVE");
    lock.exec("BEGIN EXCLUSIVE; COMMIT;");
  } catch (error) {
    lock.close();
    throw lockError(dataDir, error);
  }
  return {
    release: () => {
      if (lock.open) lock.close();
    },
  };
}

/** The error for a lock held elsewhere; other errors pass through. */
export function lockError(dataDir: string, error: unknown): unknown {
  if (error instanceof Database.SqliteError && error.code.startsWith("SQLITE_BUSY")) {
    return new StreamgateError(
      Code.FAILED_PRECONDITION,
      `data dir ${dataDir} is in use by another streamgate process (SQLite lock held)`,
      { reason: "DATA_DIR_LOCKED", cause: error },
    );
  }
  return error;
}
