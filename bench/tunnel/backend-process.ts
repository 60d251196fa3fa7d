// The gRPC backend of bench/tunnel in its own process (its own event loop, like a real service): an
// interop backend without the call log; sends `{ port }` to the parent over IPC once it listens.
import { startInteropBackend } from "../../test/harness/interop-backend.js";

const backend = await startInteropBackend({ recordCalls: false, maxMessageBytes: 16 * 1024 * 1024 });
process.send?.({ port: backend.port });
process.on("disconnect", () => {
  void backend.close().then(() => process.exit(0));
});
