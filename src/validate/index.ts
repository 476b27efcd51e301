/**
 * src/validate: YAML loading with positions and limits, the JSON Schemas of schemas/, the
 * Collector semantic checks, and reports (DESIGN §2). The only module that imports ajv and
 * yaml; every YAML a user wrote is read through it.
 */

export { SECRET_REF } from "./bundle-parts.js";
export { type CachedGroupResult, ValidationCache } from "./cache.js";
export {
  type ComponentInventory,
  inventoryOf,
  missingComponents,
} from "./component-inventory.js";
export { contentTypeOf } from "./config-files.js";
export { parseDuration } from "./duration.js";
export {
  FileTooLargeError,
  PathRefusedError,
  SymlinkNotFollowedError,
  ValidateError,
  WorkingTreeError,
  WorkingTreeNotADirectoryError,
  WorkingTreeNotFoundError,
} from "./errors.js";
export { compareFindings, formatPath } from "./findings.js";
export { GROUP_NAME } from "./group.js";
export { type GroupSelector, readGroupSelector } from "./group-selector.js";
export type * from "./model.js";
export { checkCollectorConfig } from "./otelcol.js";
export {
  CollectorChecker,
  OtelcolFlagError,
  parseOtelcolFlags,
} from "./otelcol-binary.js";
export { COMPONENT_KINDS, type ComponentKind } from "./otelcol-catalog.js";
export { type RequiredComponent, requiredComponents } from "./otelcol-components.js";
export { whereIn, whereInMerged } from "./otelcol-context.js";
export {
  formatReport,
  githubAnnotation,
  isValid,
  type JsonReport,
  REPORT_FORMATS,
  type ReportFormat,
  type ReportOptions,
} from "./report.js";
export { unsafePathReason } from "./schema-ref.js";
export { BUILTIN_CONFIG_SCHEMAS } from "./schemas.js";
export {
  DEFAULT_SECRET_ENV_PREFIX,
  DEFAULT_SECRET_REF_POLICY,
  isWithin,
  refusedRef,
  type SecretRefPolicy,
} from "./secret-ref-policy.js";
export { type SettingsProblem, validateSettings } from "./settings.js";
export type { PathSegment } from "./source-map.js";
export { type ValidateOptions, validateSnapshot } from "./validate-snapshot.js";
export { readWorkingTree, type WorkingTreeRead } from "./working-tree.js";
export {
  DEFAULT_YAML_LIMITS,
  type LoadedYaml,
  type LoadResult,
  loadYaml,
  type YamlLimits,
} from "./yaml.js";
