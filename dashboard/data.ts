/**
 * What the dashboard's views show, read fresh for each page (issue 21): the status rows (status/
 * collect.ts, over SSH), the releases the stack's state records and its history (rollback/
 * history.ts, the file backend `npm run rollback` reads), and deploy.log's recent lines.
 */
import { connectionFor } from "../config/connections";
import { serviceResourceName } from "../model/resource-names";
import type { OperatorConfig } from "../operate/targets";
import { hostsOf } from "../operate/targets";
import { listHistory, readCurrentReleases, type HistoryEntry } from "../rollback/history";
import { collectStatus } from "../status/collect";
import { exec } from "../transport/ssh";
import { cellOf, type Cell } from "./cells";
import { deployLogScript } from "./deploy-log";

export interface Where {
  readonly stack: string;
  readonly project: string;
  /** The file backend's folder, or undefined for another backend (no history, no state releases). */
  readonly backendDir: string | undefined;
}

export interface FleetCell {
  readonly service: string;
  readonly host: string;
  readonly cell: Cell;
}

/** The history, or why it cannot be read. */
export function historyOf(w: Where): { entries?: HistoryEntry[]; problem?: string } {
  if (!w.backendDir) return { problem: "the stack's backend is not a file backend on this machine: no history here" };
  try {
    return { entries: listHistory(w.backendDir, w.project, w.stack) };
  } catch (err) {
    return { problem: (err as Error).message };
  }
}

/** When the serving release went live on this resource: the oldest update of its latest run in the history. */
export function liveSinceOf(history: readonly HistoryEntry[], resource: string, release: string): number | undefined {
  let since: number | undefined;
  for (const e of [...history].reverse()) {
    if (e.result !== "succeeded") continue;
    const r = Object.values(e.releases).find((x) => x.resource === resource);
    if (!r || r.releaseId !== release) break;
    since = e.startTime;
  }
  return since;
}

/** Every cell of the fleet view, in config order. `drifted`: resource names the last refresh preview named. */
export async function fleetCells(op: OperatorConfig, w: Where, drifted: ReadonlySet<string>): Promise<FleetCell[]> {
  const rows = await collectStatus(op.cfg, op.unreadableHosts);
  let state: Record<string, string> | undefined;
  if (w.backendDir)
    try {
      const current = readCurrentReleases(w.backendDir, w.project, w.stack);
      state = Object.fromEntries(Object.values(current).map((r) => [r.resource, r.releaseId]));
    } catch {
      state = undefined; // no update yet: nothing recorded to compare with
    }
  const history = historyOf(w).entries ?? [];
  const now = Math.floor(Date.now() / 1000);
  return rows.map((row) => {
    const several = hostsOf(op.cfg, row.service).length > 1;
    const resource = serviceResourceName(row.service, row.host, several);
    const refreshDrift = [...drifted].some((n) => n === resource || n.startsWith(`${resource}-`));
    return {
      service: row.service,
      host: row.host,
      cell: cellOf({
        row,
        stateRelease: state?.[resource],
        refreshDrift,
        liveSince: row.release ? liveSinceOf(history, resource, row.release) : undefined,
        now,
      }),
    };
  });
}

/** deploy.log's last `lines` lines of every service on every host (a host that cannot be read gives none). */
export async function deployLogs(
  op: OperatorConfig,
  lines = 30,
): Promise<{ service: string; host: string; lines: string[] }[]> {
  const jobs = Object.entries(op.cfg.services).flatMap(([service, s]) =>
    hostsOf(op.cfg, service).map(async (host) => {
      if (op.cfg.hosts[host]!.kind !== "existing" || Object.hasOwn(op.unreadableHosts, host))
        return { service, host, lines: [] };
      try {
        const r = await exec(connectionFor(host, op.cfg), "/bin/sh -s", {
          step: "deploy log",
          stdin: deployLogScript(s.root, service, lines),
          timeoutMs: 20_000,
        });
        return { service, host, lines: r.stdout.split("\n").filter((l) => l.trim() !== "") };
      } catch {
        return { service, host, lines: [] };
      }
    }),
  );
  return Promise.all(jobs);
}
