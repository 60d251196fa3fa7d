// What every instance's worker holds of one subscription, gathered over core NATS for seeks, snapshots and stats.
import type { NatsConnection, Subscription } from "@nats-io/nats-core";

/** One instance's answer for one subscription. */
export interface WorkerState {
  /** The consumer generation the worker delivers. */
  generation: number;
  /** Sequences acked through that instance since its worker started or last seek (settled when asked to). */
  acked: number[];
  /** Messages it fetched and holds without a client lease (JetStream counts them as ack-pending). */
  unleased: number;
}

/** What a state request asks for. */
interface StateRequest {
  /** Wait for the instance's in-flight acks to be confirmed before answering (seeks and snapshots). */
  settle: boolean;
}

/** How long a gather waits after the last answer for another (the instances answer within milliseconds). */
const STALL_MS = { settled: 400, quick: 60 } as const;
/** Longest a gather waits in all. */
const MAX_WAIT_MS = 4_000;

/** The subject on which every instance's worker of `subscriptionId` answers. */
export function stateSubject(namespace: string, subscriptionId: string): string {
  return `${namespace}.state.${subscriptionId}`;
}

/** Answers state requests for one worker until the returned function is called. */
export function serveWorkerState(
  connection: NatsConnection,
  subject: string,
  answer: (settle: boolean) => Promise<WorkerState>,
): () => void {
  let subscription: Subscription | null = null;
  try {
    subscription = connection.subscribe(subject, {
      callback: (error, message) => {
        if (error !== null) return;
        let request: StateRequest = { settle: false };
        try {
          request = message.json<StateRequest>();
        } catch {
          // an empty request asks for the quick answer
        }
        void answer(request.settle === true).then(
          (state) => message.respond(JSON.stringify(state)),
          () => undefined,
        );
      },
    });
  } catch {
    // a closed connection: nothing to serve
  }
  return () => subscription?.unsubscribe();
}

/**
 * Asks every instance serving `subject` for its state; answers of another generation are dropped.
 * Instances that do not answer in time (dead, or unreachable) are missing from the result.
 */
export async function gatherWorkerStates(
  connection: NatsConnection,
  subject: string,
  generation: number,
  settle: boolean,
): Promise<WorkerState[]> {
  const states: WorkerState[] = [];
  try {
    const answers = await connection.requestMany(subject, JSON.stringify({ settle } satisfies StateRequest), {
      strategy: "stall",
      stall: settle ? STALL_MS.settled : STALL_MS.quick,
      maxWait: MAX_WAIT_MS,
    });
    for await (const answer of answers) {
      try {
        const state = answer.json<WorkerState>();
        if (state.generation === generation) states.push(state);
      } catch {
        // a status message (no responders) or a malformed answer
      }
    }
  } catch {
    // no responders: no instance holds a worker of this subscription
  }
  return states;
}
