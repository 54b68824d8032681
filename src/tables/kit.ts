/**
 * Small TypeBox helpers for the compiled-config contract. Unlike the CRD schemas (src/api),
 * this contract is read only by our own proxy, so it may use `enum`/`const` freely; objects are
 * still closed so a typo in a compiler change fails validation instead of being ignored.
 */
import { type TObject, type TProperties, type TSchema, Type } from '@sinclair/typebox';

export type { Static, TSchema } from '@sinclair/typebox';
export { Type };

/** A closed object: properties are optional unless wrapped as required by TypeBox. */
export function Obj<P extends TProperties>(properties: P, description?: string): TObject<P> {
  return Type.Object(properties, { additionalProperties: false, ...(description ? { description } : {}) });
}

export const Opt = Type.Optional;
export const Str = (description?: string) => Type.String(description ? { description } : {});
export const NonEmpty = (description?: string) =>
  Type.String({ minLength: 1, ...(description ? { description } : {}) });
export const Bool = (description?: string) => Type.Boolean(description ? { description } : {});
/** Non-negative integer (counts, milliseconds). */
export const Count = (description?: string) =>
  Type.Integer({ minimum: 0, ...(description ? { description } : {}) });
export const PortNum = (description?: string) =>
  Type.Integer({ minimum: 0, maximum: 65535, ...(description ? { description } : {}) });
/** A percentage 0..100 with fractions allowed, as in Istio's `Percent`. */
export const Percent = (description?: string) =>
  Type.Number({ minimum: 0, maximum: 100, ...(description ? { description } : {}) });
export const List = <T extends TSchema>(item: T, description?: string) =>
  Type.Array(item, description ? { description } : {});
export const MapOf = <T extends TSchema>(value: T, description?: string) =>
  Type.Record(Type.String(), value, description ? { description } : {});
export const StrMap = (description?: string) => MapOf(Type.String(), description);
export const Enum = <const V extends string[]>(values: [...V], description?: string) =>
  Type.Unsafe<V[number]>({ type: 'string', enum: values, ...(description ? { description } : {}) });
