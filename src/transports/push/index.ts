// Push delivery transport: the push worker, its link of the engine chain and the OIDC token signer.
export * from "./push-observation.js";
export * from "./push-signer.js";
export * from "./push-worker.js";
