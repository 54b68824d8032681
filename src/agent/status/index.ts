/** The agent's status server (15020): readiness, app probe rewriting, /quitquitquit, merged metrics. */
export { runProbe } from './probe.js';
export { APP_PROBERS_ENV, type AppProber, parseAppProbers } from './probers.js';
export { type AppMetrics, appMetricsFromEnv, StatusServer, type StatusTarget } from './server.js';
