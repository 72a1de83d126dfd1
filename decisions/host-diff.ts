import { differs } from "./diff-keys";

/**
 * The HostBootstrap diff: another address or port is another machine (replace); a new bootstrap
 * spec re-runs it (update); a rotated key or a timeout is no change. Outputs that still hold the
 * rendered script (stored before docs/state.md's sizes: ~4 KB of state) are an update that only
 * records the outputs again (recordOnly): the provider renders the script from the spec.
 */
export function diffHostBootstrap(
  olds: unknown,
  news: unknown,
): { changes: boolean; replaces: string[]; recordOnly: boolean } {
  const moved = differs(olds, news, "connection.host") || differs(olds, news, "connection.port");
  const rerun = moved || differs(olds, news, "scriptSha");
  const storedScript = typeof olds === "object" && olds !== null && "script" in olds;
  return { changes: rerun || storedScript, replaces: moved ? ["connection"] : [], recordOnly: !rerun && storedScript };
}
