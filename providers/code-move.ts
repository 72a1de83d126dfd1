import type * as pulumi from "@pulumi/pulumi";
import { isCodeLoaderText } from "../model/shipped-code";

type Props = Record<string, unknown>;

/**
 * A resource whose stored outputs still carry an older `__provider` (the whole provider, as
 * fleet stored it before docs/state.md's loader) moves to the loader on its next `pulumi up`:
 * where the provider itself sees no change, the diff reports one and the update only records
 * the outputs again, nothing runs on the host. Without this the engine would keep the old
 * outputs (a same step keeps them), ~50 KB per resource, until the resource changes.
 */
export function withCodeMove(provider: pulumi.dynamic.ResourceProvider): pulumi.dynamic.ResourceProvider {
  const moved: pulumi.dynamic.ResourceProvider = { ...provider };
  const innerDiff = provider.diff?.bind(provider);
  const innerUpdate = provider.update?.bind(provider);
  const changes = async (id: string, olds: Props, news: Props): Promise<pulumi.dynamic.DiffResult> =>
    innerDiff ? innerDiff(id, olds, news) : { changes: undefined };
  if (innerDiff) {
    moved.diff = async (id: string, olds: Props, news: Props) => {
      const result = await changes(id, olds, news);
      return !result.changes && needsCodeMove(olds) ? { ...result, changes: true } : result;
    };
  }
  if (innerDiff) {
    // Also where the provider has no update of its own: the host would store no outputs at all.
    moved.update = async (id: string, olds: Props, news: Props) => {
      if (needsCodeMove(olds) && !(await changes(id, olds, news)).changes) {
        return { outs: withoutProviderText(olds) };
      }
      return innerUpdate ? innerUpdate(id, olds, news) : {};
    };
  }
  return moved;
}

/** Outputs written under an older `__provider` (the host puts the current one back on them). */
export function needsCodeMove(olds: Props): boolean {
  return "__provider" in olds && !isCodeLoaderText(olds["__provider"]);
}

function withoutProviderText(props: Props): Props {
  const rest = { ...props };
  delete rest["__provider"];
  return rest;
}
