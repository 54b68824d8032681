/** Config sources behind one interface: a directory of YAML (local mode); Kubernetes next. */
export { DirectorySource, type DirectorySourceOptions, StaticSource } from './directory.js';
export type { ConfigSource, RejectedDocument, SnapshotEvent } from './types.js';
export { acceptDocuments } from './validate.js';
