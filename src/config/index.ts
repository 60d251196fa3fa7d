// Public surface of the config component.
export {
  ConfigFileError,
  type ConfigFileProblem,
  formatConfigFile,
  loadConfigFile,
  parseConfigFile,
} from "./config-file.js";
export { closestMatch, didYouMean } from "./did-you-mean.js";
export { formatDefault, formatOptionsMarkdown, replaceOptionsMarkdown } from "./option-docs.js";
export {
  checkOptionRanges,
  envNames,
  formatRange,
  type OptionDefinition,
  optionKeys,
  optionSections,
  serverOptionTable,
} from "./option-table.js";
export { invalidOptionValue, parseOptionText, serverOptionsFromEnv, serverOptionsFromFlags } from "./option-values.js";
export {
  defaultServerOptions,
  EngineKind,
  GrpcPath,
  resolveServerOptions,
  type ServerOptions,
} from "./server-options.js";
