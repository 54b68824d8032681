/**
 * Telemetry in the compiled-config contract: the mesh-wide access log (Istio MeshConfig
 * `accessLogFile`, `accessLogEncoding`, `accessLogFormat`, read by the controller from the
 * ConfigMap `istio` of the root namespace). Optional: absent = no access log from the mesh
 * (a per-pod setting, env ISTHMUS_ACCESS_LOG_FILE or --access-log-file, wins over it anyway).
 */
import { Enum, NonEmpty, Obj, Opt, type Static, Str } from './kit.js';

export const ACCESS_LOG_ENCODINGS = ['TEXT', 'JSON'] as const;

export const AccessLogSchema = Obj(
  {
    file: NonEmpty('Path, /dev/stdout or /dev/stderr (Istio accessLogFile).'),
    encoding: Opt(Enum([...ACCESS_LOG_ENCODINGS], 'Istio accessLogEncoding; default TEXT.')),
    format: Opt(
      Str(
        'Istio accessLogFormat: an Envoy format string (TEXT) or a JSON object of field -> format ' +
          "string (JSON); absent = Istio's default format.",
      ),
    ),
  },
  'File access log of every HTTP request and TCP connection.',
);
export type AccessLogSetting = Static<typeof AccessLogSchema>;

export const TelemetrySchema = Obj(
  { accessLog: Opt(AccessLogSchema) },
  'Mesh-wide telemetry settings the proxy applies on each table swap.',
);
export type Telemetry = Static<typeof TelemetrySchema>;
