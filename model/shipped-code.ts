/**
 * How a fleet dynamic resource names the code that manages it (docs/state.md). Shared by the
 * program side (providers/ship.ts) and the provider bundles (providers/code-move.ts).
 *
 * Each resource's `__provider` is a small loader, the same text for every fleet version; the
 * code itself rides once per stack, in the configuration of an explicit `pulumi-nodejs`
 * provider resource named after the code's hash. The loader takes its bundle from that
 * configuration and runs it only if the bundle's sha256 is the one written beside it.
 */

/** The first line of every loader text: what tells a current `__provider` from an older one. */
export const CODE_LOADER_MARK = "/* fleet code loader v1, docs/state.md */";

/** The provider-configuration key of the loader's second part (providers/ship.ts LOADER_BODY). */
export const CODE_LOADER_KEY = "fleetLoader";

/** The provider package whose host runs dynamic resources, and fleet's provider resources' prefix. */
export const CODE_PROVIDER_PACKAGE = "pulumi-nodejs";
export const CODE_PROVIDER_PREFIX = "fleet-code-";

/** The dynamic-provider methods a bundle may define, in the order the host knows them. */
export const CODE_METHODS = ["check", "diff", "create", "read", "update", "delete"] as const;
export type CodeMethod = (typeof CODE_METHODS)[number];

/** The provider-configuration keys of one bundle: its packed code, and that text's sha256 (hex). */
export function codeConfigKeys(bundle: string): { readonly packed: string; readonly sha256: string } {
  return { packed: bundle, sha256: `${bundle}Sha256` };
}

/**
 * Whether a `__provider` text is the current loader. Anything else (the whole provider, as
 * fleet stored it before, or a closure from Pulumi's serializer) is older state: the next
 * update moves it over (providers/code-move.ts).
 */
export function isCodeLoaderText(text: unknown): boolean {
  return typeof text === "string" && text.startsWith(CODE_LOADER_MARK);
}
