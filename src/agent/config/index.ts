/** The sidecar agent's config watcher: published ConfigMaps -> SidecarProxy hot swap. */
export {
  type ConfigTarget,
  type ConfigWatcher,
  type ConfigWatcherOptions,
  parseDownwardLabels,
  startConfigWatcher,
} from './watcher.js';
