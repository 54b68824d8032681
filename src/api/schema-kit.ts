/**
 * Building blocks for the mesh API schemas. Every kind's spec is written once with these
 * (TypeBox), and three things are derived from it: the static TypeScript type (`Static<>`),
 * the ajv validator (unknown fields rejected) and the CRD's structural OpenAPI schema.
 *
 * Conventions that keep the derived CRD schema structural (Kubernetes' rules):
 * - every node has a `type`; no `$ref`; `oneOf`/`anyOf` are not used (mutual exclusion of
 *   fields is a semantic rule in src/validation, with a clearer message than a schema could give);
 * - objects are closed (`additionalProperties: false`) unless they are maps (`MapOf`).
 */
import {
  type Static,
  type TObject,
  type TOptional,
  type TProperties,
  type TSchema,
  Type,
} from '@sinclair/typebox';

export type { Static, TSchema } from '@sinclair/typebox';
export { Type };

/** A closed object: every property optional unless listed in `required`. */
export function Obj<P extends TProperties, R extends keyof P & string = never>(
  properties: P,
  description?: string,
  required: readonly R[] = [],
): TObject<{ [K in keyof P]: K extends R ? P[K] : TOptional<P[K]> }> {
  // TypeBox makes every property without the Optional modifier required; mark them optional.
  const props = Object.fromEntries(
    Object.entries(properties).map(([k, v]) => [
      k,
      (required as readonly string[]).includes(k) ? v : Type.Optional(v),
    ]),
  );
  return Type.Object(props, {
    additionalProperties: false,
    ...(description ? { description } : {}),
  }) as unknown as TObject<{ [K in keyof P]: K extends R ? P[K] : TOptional<P[K]> }>;
}

export const Str = (description?: string) => Type.String(description ? { description } : {});
export const Bool = (description?: string) => Type.Boolean(description ? { description } : {});
export const Int = (description?: string) =>
  Type.Integer({ format: 'int32', ...(description ? { description } : {}) });
export const UInt = (description?: string) =>
  Type.Integer({ minimum: 0, maximum: 4294967295, ...(description ? { description } : {}) });
export const Num = (description?: string) =>
  Type.Number({ format: 'double', ...(description ? { description } : {}) });
export const List = <T extends TSchema>(item: T, description?: string) =>
  Type.Array(item, description ? { description } : {});
/** A map with string keys. Written as `additionalProperties` (not TypeBox's Record, whose
 * `patternProperties` Kubernetes rejects in a structural schema). */
export const MapOf = <T extends TSchema>(value: T, description?: string) =>
  Type.Unsafe<Record<string, Static<T>>>({
    type: 'object',
    additionalProperties: value,
    ...(description ? { description } : {}),
  });
export const StrMap = (description?: string) => MapOf(Type.String(), description);
/** A protobuf Duration in its JSON form (`10s`, `1.5s`, `500ms`); checked semantically. */
export const Duration = (description?: string) =>
  Type.String({ description: description ?? 'Duration such as 10s, 1.5s or 500ms.' });
/** A protobuf enum in its JSON form. Istio accepts the names only. */
export const Enum = <const V extends string[]>(values: [...V], description?: string) =>
  Type.Unsafe<V[number]>({ type: 'string', enum: values, ...(description ? { description } : {}) });
/** A field whose shape Kubernetes should not check (e.g. protobuf Struct). */
export const FreeForm = (description?: string) =>
  Type.Unsafe<unknown>({
    type: 'object',
    'x-kubernetes-preserve-unknown-fields': true,
    ...(description ? { description } : {}),
  });
/** Kubernetes IntOrString (e.g. a port given by name or number). */
export const IntOrString = (description?: string) =>
  Type.Unsafe<number | string>({
    'x-kubernetes-int-or-string': true,
    ...(description ? { description } : {}),
  });
