// Opens the embedded engine's SQLite file: pragmas, versioned schema migrations.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Code, StreamgateError } from "../../errors/index.js";

/** The SQLite file inside the data dir. */
export const DATABASE_FILE_NAME = "streamgate.db";

/** Marks the file as ours (PRAGMA application_id, "SGW1"), so a foreign SQLite file is refused. */
const APPLICATION_ID = 0x53475731;

/**
 * Schema migrations: entry i upgrades `user_version` i to i + 1. Offsets and generations use
 * AUTOINCREMENT ids so they are never reused, even after deletion.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE topics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    config TEXT NOT NULL,
    first_offset INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    last_publish_time INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE messages (
    topic_id INTEGER NOT NULL,
    message_offset INTEGER NOT NULL,
    publish_time INTEGER NOT NULL,
    ordering_key TEXT NOT NULL,
    attributes TEXT,
    data BLOB NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (topic_id, message_offset)
  ) STRICT, WITHOUT ROWID;
  CREATE TABLE purged_topics (topic_id INTEGER PRIMARY KEY) STRICT;
  CREATE TABLE subscriptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    topic_id INTEGER,
    config TEXT NOT NULL,
    ack_floor INTEGER NOT NULL,
    last_active INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX subscriptions_by_topic ON subscriptions (topic_id, name);
  CREATE TABLE acks (
    subscription_id INTEGER NOT NULL,
    message_offset INTEGER NOT NULL,
    PRIMARY KEY (subscription_id, message_offset)
  ) STRICT, WITHOUT ROWID;
  CREATE TABLE snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    topic_id INTEGER NOT NULL,
    config TEXT NOT NULL,
    ack_floor INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX snapshots_by_topic ON snapshots (topic_id, name);
  CREATE TABLE snapshot_acks (
    snapshot_id INTEGER NOT NULL,
    message_offset INTEGER NOT NULL,
    PRIMARY KEY (snapshot_id, message_offset)
  ) STRICT, WITHOUT ROWID;
  `,
  // Pub/Sub schemas: one row per revision; `position` orders a schema's revisions (oldest first).
  `
  CREATE TABLE schema_revisions (
    name TEXT NOT NULL,
    revision_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    type TEXT NOT NULL,
    definition TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    PRIMARY KEY (name, revision_id)
  ) STRICT, WITHOUT ROWID;
  `,
  // IAM policies (SetIamPolicy), keyed by resource name; a resource's policy is deleted with it.
  `
  CREATE TABLE iam_policies (
    resource TEXT PRIMARY KEY,
    policy TEXT NOT NULL
  ) STRICT, WITHOUT ROWID;
  CREATE TRIGGER topics_drop_iam_policy AFTER DELETE ON topics
    BEGIN DELETE FROM iam_policies WHERE resource = OLD.name; END;
  CREATE TRIGGER subscriptions_drop_iam_policy AFTER DELETE ON subscriptions
    BEGIN DELETE FROM iam_policies WHERE resource = OLD.name; END;
  CREATE TRIGGER snapshots_drop_iam_policy AFTER DELETE ON snapshots
    BEGIN DELETE FROM iam_policies WHERE resource = OLD.name; END;
  `,
];

/** The schema version this build writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Opens (creating if needed) the database in `dataDir` and migrates the schema. The caller holds the data dir's
 * lock (`lockDataDir`); the database is in normal locking mode so the WAL checkpointer's thread can share it, and a
 * process of an older streamgate holding it exclusively is still refused.
 * @throws StreamgateError FAILED_PRECONDITION when the directory is in use, the file is not a
 *   streamgate database, or it was written by a newer version.
 */
export function openDatabase(dataDir: string, syncEveryCommit: boolean): Database.Database {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, DATABASE_FILE_NAME);
  const db = new Database(path, { timeout: 250 });
  try {
    db.pragma("journal_mode = WAL");
    db.pragma(`synchronous = ${syncEveryCommit ? "FULL" : "NORMAL"}`);
    db.pragma("cache_size = -32768");
    db.pragma("temp_store = MEMORY");
    db.exec("BEGIN EXCLUSIVE; COMMIT;");
    migrate(db, path);
    return db;
  } catch (error) {
    db.close();
    if (error instanceof Database.SqliteError && error.code.startsWith("SQLITE_BUSY")) {
      throw new StreamgateError(
        Code.FAILED_PRECONDITION,
        `data dir ${dataDir} is in use by another streamgate process (SQLite lock held)`,
        { reason: "DATA_DIR_LOCKED", cause: error },
      );
    }
    throw error;
  }
}

function migrate(db: Database.Database, path: string): void {
  const version = db.pragma("user_version", { simple: true }) as number;
  const applicationId = db.pragma("application_id", { simple: true }) as number;
  const hasTables = (db.prepare("SELECT count(*) AS n FROM sqlite_schema").get() as { n: number }).n > 0;
  if (applicationId !== APPLICATION_ID && (applicationId !== 0 || hasTables)) {
    throw new StreamgateError(Code.FAILED_PRECONDITION, `${path} is not a streamgate database`, {
      reason: "FOREIGN_DATABASE",
    });
  }
  if (version > SCHEMA_VERSION) {
    throw new StreamgateError(
      Code.FAILED_PRECONDITION,
      `${path} has schema version ${version}, newer than this build's ${SCHEMA_VERSION}; upgrade streamgate`,
      { reason: "SCHEMA_TOO_NEW" },
    );
  }
  for (let next = version; next < SCHEMA_VERSION; next++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[next]!);
      db.pragma(`user_version = ${next + 1}`);
      db.pragma(`application_id = ${APPLICATION_ID}`);
    })();
  }
}
