// Public surface of the errors component.
export { Code, codeName } from "./code.js";
export { httpStatusByCode, wsCloseCodeByCode } from "./mappings.js";
export { errors, StreamgateError, type StreamgateErrorOptions } from "./streamgate-error.js";
