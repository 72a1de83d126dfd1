/**
 * The fleet view's decisions (issue 21): what one service × host cell says, from its `npm run
 * status` row (status/collect.ts), the release the stack's state records for it and the last
 * refresh preview. Pure: rows in, plain data out; the page only draws it.
 */
import type { StatusRow } from "../status/collect";

/** One deploy.log line: `<time> <who> <from> -> <to> <result> <seconds>s <note>` (commands/service-shell.ts auditLine). */
export interface DeployLine {
  readonly time: string;
  readonly who: string;
  readonly from: string;
  readonly to: string;
  readonly result: string;
  readonly seconds: number;
  readonly note: string;
}

const DEPLOY_LINE = /^(\S+) (\S+) (\S*) -> (\S+) (\S+) (\d+(?:\.\d+)?)s ?(.*)$/;

/** The line's fields, or undefined for a line of another shape (kept as text by the caller). */
export function parseDeployLine(line: string): DeployLine | undefined {
  const m = DEPLOY_LINE.exec(line.trim());
  if (!m) return undefined;
  return {
    time: m[1]!,
    who: m[2]!,
    from: m[3]!,
    to: m[4]!,
    result: m[5]!,
    seconds: Number(m[6]),
    note: m[7]!,
  };
}

/** Results of a deploy.log line that mean the attempt did not go live. */
const FAILED_RESULTS = new Set(["failed", "rolled-back", "critical", "interrupted", "reverted"]);

export function deployFailed(line: DeployLine): boolean {
  return FAILED_RESULTS.has(line.result);
}

/** Worst first: the cell shows the first that holds. */
export type CellState = "unreachable" | "deploying" | "down" | "failed" | "drift" | "ok" | "absent";

export const CELL_LOOK: Record<CellState, { readonly icon: string; readonly label: string }> = {
  unreachable: { icon: "⚠", label: "not read" },
  deploying: { icon: "⟳", label: "deploying" },
  down: { icon: "✖", label: "down" },
  failed: { icon: "✖", label: "last deploy failed" },
  drift: { icon: "≠", label: "drift" },
  ok: { icon: "✔", label: "healthy" },
  absent: { icon: "·", label: "not deployed" },
};

export interface CellInputs {
  readonly row: StatusRow;
  /** The release the stack's state records for this service on this host (undefined: unknown). */
  readonly stateRelease?: string | undefined;
  /** The last refresh preview proposed changes to this service's resources on this host. */
  readonly refreshDrift?: boolean;
  /** When the serving release first went live (Unix seconds), from the stack's history. */
  readonly liveSince?: number | undefined;
  /** Now, in Unix seconds. */
  readonly now: number;
}

export interface Cell {
  readonly state: CellState;
  readonly icon: string;
  readonly label: string;
  readonly release: string;
  readonly commit: string;
  /** `3m`, `2h`, `5d`, or "" when unknown. */
  readonly age: string;
  readonly health: string;
  readonly lock: string;
  readonly lastDeploy: string;
  /** Why the cell is in its state, one line each (what the host said, what differs). */
  readonly evidence: readonly string[];
}

/** `45s`, `3m`, `2h`, `5d`. */
export function ageText(seconds: number): string {
  if (seconds < 0) return "0s";
  if (seconds < 60) return `${Math.floor(seconds)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

const LOCK_NOTE = "deploying now: ";

export function cellOf(i: CellInputs): Cell {
  const { row } = i;
  const lock = row.note.startsWith(LOCK_NOTE) ? row.note.slice(LOCK_NOTE.length) : "";
  const last = parseDeployLine(row.lastDeploy);
  let since = i.liveSince;
  if (since === undefined && last && !deployFailed(last) && last.to === row.release) {
    const t = Date.parse(last.time);
    if (!Number.isNaN(t)) since = Math.floor(t / 1000);
  }
  const evidence: string[] = [];
  let state: CellState;
  if (row.note && !lock) {
    state = row.note === "not deployed" ? "absent" : "unreachable";
    evidence.push(row.note);
  } else if (lock) {
    state = "deploying";
    evidence.push(`lock held by ${lock}`);
  } else if (row.active !== "active" || row.health !== "200") {
    state = "down";
    evidence.push(`unit ${row.active || "unknown"}, health ${row.health || "no answer"}`);
  } else if (last && deployFailed(last)) {
    state = "failed";
    evidence.push(
      `${last.from || "(none)"} -> ${last.to} ${last.result} after ${last.seconds}s${last.note ? `: ${last.note}` : ""}`,
    );
  } else {
    state = "ok";
  }
  const stateDiffers = i.stateRelease !== undefined && row.release !== "" && i.stateRelease !== row.release;
  if (stateDiffers) evidence.push(`live ${row.release}, state ${i.stateRelease}`);
  if (i.refreshDrift) evidence.push("the refresh preview proposes changes");
  if (state === "ok" && (stateDiffers || i.refreshDrift)) state = "drift";
  return {
    state,
    ...CELL_LOOK[state],
    release: row.release,
    commit: row.commit,
    age: since === undefined ? "" : ageText(i.now - since),
    health: row.health,
    lock,
    lastDeploy: row.lastDeploy,
    evidence,
  };
}
