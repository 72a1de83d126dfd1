import { differs } from "./diff-keys";

/**
 * The HostBootstrap diff: another address or port is another machine (replace); a new bootstrap
 * script re-runs it (update); a rotated key or a timeout is no change.
 */
export function diffHostBootstrap(olds: unknown, news: unknown): { changes: boolean; replaces: string[] } {
  const moved = differs(olds, news, "connection.host") || differs(olds, news, "connection.port");
  return { changes: moved || differs(olds, news, "scriptSha"), replaces: moved ? ["connection"] : [] };
}
