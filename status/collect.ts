import type { FleetConfig } from "../config/schema";
import { isFleetError } from "../model/errors";
import { connectionFor } from "../config/connections";
import { statusScript } from "../commands/status";
import { decodeBase64, parseFacts } from "../commands/facts";
import { exec } from "../transport/ssh";

/** One service on one host, as `npm run status` shows it. */
export interface StatusRow {
  readonly service: string;
  readonly host: string;
  readonly release: string;
  readonly commit: string;
  readonly active: string;
  readonly health: string;
  readonly lastDeploy: string;
  /** Set when a deploy holds the lock right now, or the host could not be read. */
  readonly note: string;
}

/**
 * Reads every configured service on every host it runs on, all hosts in parallel. `unreadable`:
 * hosts not to connect to, with why (a secret key the script could not read), shown as their note.
 */
export async function collectStatus(
  cfg: FleetConfig,
  unreadable: Readonly<Record<string, string>> = {},
): Promise<StatusRow[]> {
  const jobs = Object.entries(cfg.services).flatMap(([name, s]) =>
    (s.host ? [s.host] : s.hosts!).map(async (hostName): Promise<StatusRow> => {
      const row = { service: name, host: hostName, release: "", commit: "", active: "", health: "", lastDeploy: "" };
      if (cfg.hosts[hostName]!.kind !== "existing")
        return { ...row, note: "hcloud host: its address is in the stack state" };
      if (Object.hasOwn(unreadable, hostName)) return { ...row, note: unreadable[hostName]! };
      try {
        const r = await exec(connectionFor(hostName, cfg), "/bin/sh -s", {
          step: "status",
          stdin: statusScript({
            root: s.root,
            name,
            unitName: s.unitName ?? name,
            healthUrl: s.health.url,
            ...(s.proxy ? { proxied: true } : {}),
          }),
          timeoutMs: 20_000,
        });
        const f = parseFacts(r.stdout).one;
        if (f["deployed"] !== "1") return { ...row, note: "not deployed" };
        const locked = decodeBase64(f["locked"]).trim();
        return {
          ...row,
          release: f["release"] ?? "",
          commit: (f["commit"] ?? "").slice(0, 12),
          active: f["active"] ?? "",
          health: f["health"] ?? "",
          lastDeploy: decodeBase64(f["last"]).trim(),
          note: locked ? `deploying now: ${locked}` : "",
        };
      } catch (err) {
        if (isFleetError(err) && err.kind === "config")
          return { ...row, note: `config: ${(err.problems ?? [err.summary]).join("; ")}` };
        return { ...row, note: `unreachable: ${(err as Error).message.split("\n")[0]}` };
      }
    }),
  );
  return Promise.all(jobs);
}

/** The rows as an aligned text table. */
export function formatStatus(rows: readonly StatusRow[]): string {
  const header = ["SERVICE", "HOST", "RELEASE", "COMMIT", "ACTIVE", "HEALTH", "LAST DEPLOY"];
  const lines = rows.map((r) => [
    r.service,
    r.host,
    r.release || "-",
    r.commit || "-",
    r.active || "-",
    r.health || "-",
    r.note || r.lastDeploy || "-",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cols: string[]) => cols.map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i]!))).join("  ");
  return [fmt(header), ...lines.map(fmt)].join("\n");
}
