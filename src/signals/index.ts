// Public surface of signals: abort signals with deadlines that hold on every runtime.
export { createDeadlineSignal, type DeadlineSignal } from "./deadline-signal.js";
