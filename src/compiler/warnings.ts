/**
 * Why part of the config was not applied (an unsupported field, a subset matching no rule):
 * the controller turns these into status conditions and Events. Never thrown.
 */
export interface CompileWarning {
  /** `VirtualService shop/reviews` or `DestinationRule shop/reviews`. */
  resource: string;
  message: string;
}

export type Warn = (resource: string, message: string) => void;

export class Warnings {
  private readonly seen = new Set<string>();
  readonly items: CompileWarning[] = [];
  readonly warn: Warn = (resource, message) => {
    const key = `${resource}\0${message}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.items.push({ resource, message });
  };

  sorted(): CompileWarning[] {
    return [...this.items].sort((a, b) =>
      a.resource < b.resource
        ? -1
        : a.resource > b.resource
          ? 1
          : a.message < b.message
            ? -1
            : a.message > b.message
              ? 1
              : 0,
    );
  }
}
