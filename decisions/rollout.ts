/** How a service on several hosts rolls out: batches, canaries first. */
export interface RolloutPolicy {
  /** Hosts per batch, or a share of all hosts ("25%"), rounded up. */
  readonly batch: number | string;
  /** Hosts deployed first, as a batch of their own. */
  readonly canary: readonly string[];
}

/**
 * The batches, in order: the canaries (if any), then the other hosts in the given order, `batch`
 * at a time. Each batch must pass its health gates before the next starts (dependsOn chains).
 */
export function planBatches(hosts: readonly string[], policy: RolloutPolicy): string[][] {
  const size =
    typeof policy.batch === "number"
      ? policy.batch
      : Math.max(1, Math.ceil((hosts.length * Number(policy.batch.replace("%", ""))) / 100));
  if (!Number.isInteger(size) || size < 1)
    throw new Error(`rollout.batch must be at least 1 host, got ${String(policy.batch)}`);
  const canary = hosts.filter((h) => policy.canary.includes(h));
  const rest = hosts.filter((h) => !policy.canary.includes(h));
  const batches: string[][] = canary.length ? [canary] : [];
  for (let i = 0; i < rest.length; i += size) batches.push(rest.slice(i, i + size));
  return batches;
}
