/**
 * A package imported on its first use, once (the SDKs are: Slack mode answers sooner, the console never loads
 * them). A CommonJS package imported from an ES module (the esbuild bundle, or Node when it cannot see the names)
 * can come back with its exports under `default`; `has` names an export that tells which shape arrived.
 */
export function lazyModule<T extends object>(name: string, load: () => Promise<T>, has: keyof T): () => Promise<T> {
  let loaded: Promise<T> | undefined;
  return () => {
    loaded ??= load().then((mod) => {
      if (has in mod) return mod;
      const inner = (mod as { default?: T }).default;
      if (inner && typeof inner === "object" && has in inner) return inner;
      throw new Error(`${name} loaded without its ${String(has)} export: the build is broken (npm run build)`);
    });
    return loaded;
  };
}
