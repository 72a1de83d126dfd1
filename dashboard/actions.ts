/**
 * The dashboard's actions as plain data (issue 21): a form's fields, checked against the stack,
 * become the command line of the operator command that does it (`deploy`, `rollback`, or the
 * CLI through `pulumi`), run as a child process exactly as `npm run <command>` runs it. Bad input
 * is a problem for the page, and nothing runs.
 */
import { driftCommand } from "../decisions/drift";
import type { FleetConfig } from "../config/schema";
import { isFleetError } from "../model/errors";
import { deployTargets, type DeploySelection } from "../operate/deploy-targets";
import { listFlag } from "../operate/targets";
import { serviceReleases, type HistoryEntry } from "../rollback/history";

export type ActionKind = "preview" | "refresh" | "deploy" | "rollback" | "pin";

export const ACTION_KINDS: readonly ActionKind[] = ["preview", "refresh", "deploy", "rollback", "pin"];

export interface ActionPlan {
  readonly kind: ActionKind;
  /** What the page and the refusal name: `rollback to update 2`. */
  readonly label: string;
  /** After `node build/launch.js`: the launcher's command and its arguments. */
  readonly argv: readonly string[];
  /** What the confirmation asks. */
  readonly confirm: string;
}

export interface ActionContext {
  readonly stack: string;
  readonly cwd: string;
  readonly services: readonly string[];
  /** The stack's history, as `npm run rollback -- --list` numbers it (undefined: not a file backend). */
  readonly history: readonly HistoryEntry[] | undefined;
  /**
   * What is wrong with a deploy's `--hosts`/`--services` (unknown names, a service on none of the
   * hosts), judged as `npm run deploy` judges them; undefined when nothing is.
   */
  readonly selectionProblem: (selection: DeploySelection) => string | undefined;
}

export type Planned =
  { readonly ok: true; readonly plan: ActionPlan } | { readonly ok: false; readonly problem: string };

const RELEASE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The releases of `service` the history knows (any host, any update), newest first. */
export function knownReleases(history: readonly HistoryEntry[], service: string): string[] {
  const seen: string[] = [];
  for (const e of [...history].reverse())
    for (const r of serviceReleases(e.releases, service)) if (!seen.includes(r.releaseId)) seen.push(r.releaseId);
  return seen;
}

/** `ActionContext.selectionProblem` for a stack: `npm run deploy`'s own check of the names. */
export function deploySelectionProblem(
  cfg: FleetConfig,
  stack: string,
  project: string,
): (selection: DeploySelection) => string | undefined {
  return (selection) => {
    try {
      deployTargets(cfg, stack, project, selection);
      return undefined;
    } catch (err) {
      if (isFleetError(err)) return `${err.summary}. ${err.hint.replace(/\.$/, "")}`;
      throw err;
    }
  };
}

/** One form's fields → the plan, or what is wrong with them. */
export function planAction(form: Readonly<Record<string, string | undefined>>, ctx: ActionContext): Planned {
  const bad = (problem: string): Planned => ({ ok: false, problem: `${problem}. Nothing was run.` });
  const kind = form["action"] ?? "";
  if (!(ACTION_KINDS as readonly string[]).includes(kind))
    return bad(`unknown action ${JSON.stringify(kind)}: the actions are ${ACTION_KINDS.join(", ")}`);
  const common = ["--stack", ctx.stack, "--cwd", ctx.cwd];
  const k = kind as ActionKind;
  switch (k) {
    case "preview":
      return {
        ok: true,
        plan: {
          kind: k,
          label: "preview",
          argv: ["pulumi", "preview", "--diff", "--stack", ctx.stack, "--non-interactive"],
          confirm: `Preview stack ${ctx.stack} (pulumi preview --diff; changes nothing)?`,
        },
      };
    case "refresh":
      return {
        ok: true,
        plan: {
          kind: k,
          label: "refresh preview (drift)",
          argv: ["pulumi", ...driftCommand(ctx.stack)],
          confirm: `Compare stack ${ctx.stack}'s live state with what the program wants (a refresh preview; changes nothing)?`,
        },
      };
    case "deploy": {
      // A blank field is "all", as a flag that is not given.
      const field = (name: string) => listFlag((form[name] ?? "").trim() || undefined);
      const hosts = field("hosts");
      const services = field("services");
      const selection: DeploySelection = { ...(hosts ? { hosts } : {}), ...(services ? { services } : {}) };
      const problem = hosts || services ? ctx.selectionProblem(selection) : undefined;
      if (problem) return bad(problem);
      const only = [
        ...(hosts ? ["--hosts", hosts.join(",")] : []),
        ...(services ? ["--services", services.join(",")] : []),
      ];
      const scope = [hosts && `hosts ${hosts.join(", ")}`, services && `services ${services.join(", ")}`]
        .filter(Boolean)
        .join(", ");
      return {
        ok: true,
        plan: {
          kind: k,
          label: scope ? `deploy (${scope})` : "deploy",
          argv: ["deploy", ...only, ...common],
          confirm: scope
            ? `Deploy only ${scope} of stack ${ctx.stack} (npm run deploy ${only.join(" ")}: checks, then pulumi up --target; the rest is left alone)?`
            : `Deploy stack ${ctx.stack} (npm run deploy: checks, then pulumi up)?`,
        },
      };
    }
    case "rollback": {
      const text = (form["version"] ?? "").trim();
      if (!ctx.history) return bad("rollback reads a file backend's history, and this stack has none here");
      if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > ctx.history.length)
        return bad(
          `roll back to which update? ${JSON.stringify(text)} is not one of the stack's updates (1 to ${ctx.history.length})`,
        );
      const n = Number(text);
      return {
        ok: true,
        plan: {
          kind: k,
          label: `rollback to update ${n}`,
          argv: ["rollback", String(n), ...common],
          confirm: `Roll stack ${ctx.stack} back to update ${n} (every service pinned to its release then, then pulumi up)?`,
        },
      };
    }
    case "pin": {
      const service = (form["service"] ?? "").trim();
      const release = (form["release"] ?? "").trim();
      if (!ctx.services.includes(service))
        return bad(
          `unknown service ${JSON.stringify(service)}: the stack's services are ${ctx.services.join(", ") || "none"}`,
        );
      if (!RELEASE.test(release)) return bad(`not a release id: ${JSON.stringify(release)}`);
      const known = ctx.history ? knownReleases(ctx.history, service) : [];
      if (!known.includes(release))
        return bad(
          `service ${service} never ran release ${release} in this stack's history (known: ${known.join(", ") || "none"})`,
        );
      return {
        ok: true,
        plan: {
          kind: k,
          label: `pin ${service} to ${release}`,
          argv: ["rollback", "--service", service, release, ...common],
          confirm: `Pin ${service} to release ${release} on every host it runs on (fleet:pins, then pulumi up)?`,
        },
      };
    }
    default: {
      const never: never = k;
      return bad(`unknown action ${String(never)}`);
    }
  }
}
