// Consistency checks of the embedded engine's database: SQLite's own plus the engine's invariants.
import type Database from "better-sqlite3";

/** Invariant queries: each returns one row per violation, with a `problem` column. */
const INVARIANTS: readonly string[] = [
  // Each topic's retained log is exactly [first_offset, next_offset) and its byte counter is exact.
  `SELECT 'topic ' || t.name || ': counters first=' || t.first_offset || ' next=' || t.next_offset || ' bytes=' || t.bytes
          || ' but log has ' || coalesce(m.n, 0) || ' messages [' || coalesce(m.lo, '-') || ', ' || coalesce(m.hi, '-')
          || '] of ' || coalesce(m.total, 0) || ' bytes' AS problem
     FROM topics t
     LEFT JOIN (SELECT topic_id, min(message_offset) lo, max(message_offset) hi, count(*) n, sum(size) total
                  FROM messages GROUP BY topic_id) m ON m.topic_id = t.id
    WHERE t.first_offset > t.next_offset
       OR coalesce(m.n, 0) <> t.next_offset - t.first_offset
       OR coalesce(m.total, 0) <> t.bytes
       OR (m.n > 0 AND (m.lo <> t.first_offset OR m.hi <> t.next_offset - 1))`,
  `SELECT 'messages of topic generation ' || topic_id || ' belong to no topic and are not queued for purging' AS problem
     FROM (SELECT DISTINCT topic_id FROM messages)
    WHERE topic_id NOT IN (SELECT id FROM topics) AND topic_id NOT IN (SELECT topic_id FROM purged_topics)`,
  `SELECT 'subscription ' || name || ': topic generation ' || topic_id || ' does not exist' AS problem
     FROM subscriptions WHERE topic_id IS NOT NULL AND topic_id NOT IN (SELECT id FROM topics)`,
  `SELECT 'subscription ' || s.name || ': ack of offset ' || a.message_offset || ' below its floor ' || s.ack_floor AS problem
     FROM acks a JOIN subscriptions s ON s.id = a.subscription_id WHERE a.message_offset < s.ack_floor`,
  `SELECT 'acks of unknown subscription generation ' || subscription_id AS problem
     FROM (SELECT DISTINCT subscription_id FROM acks) WHERE subscription_id NOT IN (SELECT id FROM subscriptions)`,
  `SELECT 'acks of unknown snapshot ' || snapshot_id AS problem
     FROM (SELECT DISTINCT snapshot_id FROM snapshot_acks) WHERE snapshot_id NOT IN (SELECT id FROM snapshots)`,
];

/**
 * Runs `PRAGMA integrity_check` and the engine's invariants.
 * @returns one line per problem; empty when the database is sound.
 */
export function checkDatabaseIntegrity(db: Database.Database): string[] {
  const problems = (db.pragma("integrity_check") as { integrity_check: string }[])
    .map((row) => row.integrity_check)
    .filter((line) => line !== "ok");
  for (const sql of INVARIANTS) {
    for (const row of db.prepare(sql).all() as { problem: string }[]) problems.push(row.problem);
  }
  return problems;
}
