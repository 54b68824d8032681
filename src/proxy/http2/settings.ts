/** HTTP/2 settings shared by the downstream server and the upstream pool. */

/** What we advertise: windows larger than the 64 KiB default, for throughput. */
export const H2_SETTINGS = {
  initialWindowSize: 1024 * 1024,
  maxConcurrentStreams: 1000,
  maxHeaderListSize: 60 * 1024,
} as const;

/** Connection-level receive window (sent as a WINDOW_UPDATE once connected). */
export const H2_CONNECTION_WINDOW = 16 * 1024 * 1024;

/** node:http2 per-session memory cap in MB (default 10 is tight for many busy streams). */
export const H2_MAX_SESSION_MEMORY = 64;
