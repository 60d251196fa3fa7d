// What an acknowledge or modify-ack-deadline call did with each ack id (exactly-once delivery reports it to clients).

/** The outcome of one acknowledge or modify-ack-deadline call. */
export interface AckResult {
  /**
   * Ack ids that name no current delivery: the lease expired and the message was redelivered,
   * it was already acked, or the id predates a restart or seek. Nothing was done with them.
   * Pub/Sub reports them as `PERMANENT_FAILURE_INVALID_ACK_ID` on exactly-once subscriptions.
   */
  invalidAckIds: string[];
  /**
   * Ack ids whose outcome could not be made durable now (e.g. the store did not confirm in
   * time); the client may retry them. Pub/Sub's `TRANSIENT_FAILURE_*`.
   */
  temporaryFailedAckIds: string[];
  /** True when the subscription has exactly-once delivery, so clients expect per-id results. */
  exactlyOnce: boolean;
}

/** An {@link AckResult} where every id was applied. */
export function ackApplied(exactlyOnce: boolean): AckResult {
  return { invalidAckIds: [], temporaryFailedAckIds: [], exactlyOnce };
}
