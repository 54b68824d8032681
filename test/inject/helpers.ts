/** Shared fixtures for the injection tests: a fixed context so goldens do not move with the version. */
import { defaultInjectContext } from '../../src/inject/context.js';
import type { InjectContext, Pod } from '../../src/inject/types.js';

export function testContext(overrides: Partial<InjectContext> = {}): InjectContext {
  return defaultInjectContext({
    proxyImage: 'docker.io/isthmus/isthmus:test',
    clusterVersion: '1.28.3',
    ...overrides,
  });
}

export function simplePod(
  overrides: { annotations?: Record<string, string>; labels?: Record<string, string> } = {},
): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'web',
      namespace: 'shop',
      labels: { app: 'web', ...overrides.labels },
      ...(overrides.annotations && { annotations: overrides.annotations }),
    },
    spec: {
      containers: [
        {
          name: 'web',
          image: 'example.com/web:1',
          ports: [{ name: 'http', containerPort: 8080 }],
          readinessProbe: { httpGet: { path: '/ready', port: 'http' }, timeoutSeconds: 2 },
          livenessProbe: { httpGet: { path: '/live', port: 8080, scheme: 'HTTPS' } },
        },
      ],
    },
  };
}
