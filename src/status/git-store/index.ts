/**
 * The status writer's Git store: loose objects, trees, deltas and packs of the status branch,
 * packed and verified without the git command line. The rest of src/status uses it only
 * through this file.
 */
export type { PackBlob } from "./blob-pack.js";
export { ObjectWriter, type WriteStats } from "./objects.js";
export { OwnPacks } from "./own-packs.js";
export { type BlobPackWriter, Packer, type PackerOptions, type PackResult } from "./packer.js";
export { type ApplyStats, applyChanges, type FileChanges } from "./tree-builder.js";
