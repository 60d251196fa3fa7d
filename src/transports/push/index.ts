// Push delivery transport: the push worker and the OIDC token signer.
export * from "./push-signer.js";
export * from "./push-worker.js";
