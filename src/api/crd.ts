/**
 * Derives each kind's CustomResourceDefinition from its TypeScript schema, so `crds/` never
 * drifts from the validator (a test regenerates and compares).
 *
 * The derived OpenAPI schema is structural, with one deliberate difference from the ajv schema:
 * objects carry `x-kubernetes-preserve-unknown-fields: true` instead of being closed. A
 * Kubernetes 1.20 apiserver would otherwise prune unknown fields silently before admission, and
 * a typo (`rout:`) would vanish; kept, it reaches our validating webhook, which names it.
 */
import type { KindInfo } from './kinds.js';

type Json = Record<string, unknown>;

function toStructural(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toStructural);
  if (node === null || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [key, value] of Object.entries(node as Json)) {
    if (key === 'additionalProperties' && value === false) continue;
    out[key] = key === 'enum' || key === 'required' ? value : toStructural(value);
  }
  if (out.type === 'object' && out.properties && !out['x-kubernetes-preserve-unknown-fields']) {
    out['x-kubernetes-preserve-unknown-fields'] = true;
  }
  return out;
}

export function crdFor(kind: KindInfo): Json {
  const schema = {
    type: 'object',
    properties: {
      spec: toStructural(kind.spec),
      status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
    },
  };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${kind.plural}.${kind.group}`,
      labels: { 'app.kubernetes.io/part-of': 'isthmus' },
    },
    spec: {
      group: kind.group,
      names: {
        kind: kind.kind,
        listKind: `${kind.kind}List`,
        plural: kind.plural,
        singular: kind.singular,
        ...(kind.shortNames.length ? { shortNames: kind.shortNames } : {}),
        categories: ['istio-io', `${kind.group.split('.')[0]}-istio-io`],
      },
      scope: 'Namespaced',
      versions: kind.versions.map((name, i) => ({
        name,
        served: true,
        storage: i === 0,
        schema: { openAPIV3Schema: schema },
        subresources: { status: {} },
        additionalPrinterColumns: [
          ...(kind.printerColumns ?? []),
          { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
        ],
      })),
    },
  };
}
