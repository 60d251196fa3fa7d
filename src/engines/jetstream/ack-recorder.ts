// One worker's writes to the ack records: a record per ack call, retried while NATS cannot store it, and trimmed as the ack floor passes it.
import type { AckRecords } from "./ack-records.js";

/** Ticks (seconds) between two trims of the records below the ack floor. */
const TRIM_EVERY_TICKS = 10;

/** What the recorder needs of its worker. */
export interface AckRecorderHost {
  readonly records: AckRecords;
  /** The subscription's id and current consumer generation. */
  current(): { id: string; generation: number };
  /** The current consumer's ack floor (null when it cannot be read). */
  ackFloor(): Promise<number | null>;
}

/**
 * Writes the sequences each ack call acked to the subscription's ack records (see
 * {@link AckRecords}). A record that JetStream does not store (NATS failing over) is kept here and
 * written again every second; until then the worker's own acked set still answers for it while
 * this instance runs.
 */
export class AckRecorder {
  private unrecorded: number[] = [];
  private unrecordedGeneration = 0;
  private writtenSinceTrim = false;
  private ticks = 0;
  private busy = false;

  constructor(private readonly host: AckRecorderHost) {}

  /** Records `sequences` of `generation` as acked; resolves once stored (or kept for a retry). */
  async record(generation: number, sequences: readonly number[]): Promise<void> {
    if (sequences.length === 0) return;
    const { id } = this.host.current();
    this.writtenSinceTrim = true;
    const stored = await this.host.records.write(id, generation, sequences).catch(() => false);
    if (!stored) this.keep(generation, sequences);
  }

  /** Takes back acks recorded before JetStream confirmed them (it did not): a later seek delivers them again. */
  async retract(generation: number, sequences: readonly number[]): Promise<void> {
    const { id } = this.host.current();
    const kept = new Set(sequences);
    this.unrecorded = this.unrecorded.filter((sequence) => !kept.has(sequence));
    await this.host.records.write(id, generation, sequences, true).catch(() => false);
  }

  /** Every second: writes what could not be stored, and now and then purges records below the ack floor. */
  tick(): void {
    if (this.busy) return;
    this.ticks++;
    const { id, generation } = this.host.current();
    const retry = this.unrecordedGeneration === generation ? this.unrecorded : [];
    const trim = this.writtenSinceTrim && this.ticks % TRIM_EVERY_TICKS === 0;
    if (retry.length === 0 && !trim) return;
    this.busy = true;
    void (async () => {
      if (retry.length > 0) {
        this.unrecorded = [];
        await this.record(generation, retry);
      }
      if (trim) {
        this.writtenSinceTrim = false;
        const floor = await this.host.ackFloor();
        if (floor !== null) await this.host.records.trim(id, generation, floor).catch(() => undefined);
      }
    })().finally(() => {
      this.busy = false;
    });
  }

  /** A new generation (seek) or a closed worker: what was not stored belongs to a replaced consumer. */
  reset(): void {
    this.unrecorded = [];
    this.writtenSinceTrim = false;
  }

  private keep(generation: number, sequences: readonly number[]): void {
    if (generation !== this.unrecordedGeneration) {
      this.unrecorded = [];
      this.unrecordedGeneration = generation;
    }
    this.unrecorded.push(...sequences);
  }
}
