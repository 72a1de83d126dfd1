import { UNKNOWN, canonical } from "./service-diff";

/**
 * The HostBootstrap diff: another address or port is another machine (replace); a new bootstrap
 * script re-runs it (update); a rotated key or a timeout is no change.
 */
export function diffHostBootstrap(olds: unknown, news: unknown): { changes: boolean; replaces: string[] } {
  const get = (o: unknown, ...path: string[]) =>
    path.reduce<unknown>(
      (v, k) => (v && typeof v === "object" ? (v as Record<string, unknown>)[k] : v === UNKNOWN ? UNKNOWN : undefined),
      o,
    );
  const differs = (...path: string[]) => {
    const next = get(news, ...path);
    return next === UNKNOWN || canonical(get(olds, ...path)) !== canonical(next);
  };
  const moved = differs("connection", "host") || differs("connection", "port");
  return { changes: moved || differs("scriptSha"), replaces: moved ? ["connection"] : [] };
}
