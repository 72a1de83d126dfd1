/**
 * Runs the dashboard's actions (issue 21) as child processes of the operator commands, exactly as
 * `npm run <command>` starts them (`node build/launch.js <command> …`, the dashboard's own
 * environment), one at a time (mutex.ts). Their output is cut into lines, redacted of the stack's
 * secrets (operate/lines.ts, as the CLI prints them) and kept, for the page's event stream.
 */
import { spawn } from "child_process";
import { randomBytes } from "crypto";
import { LAUNCHER } from "../engine/invoke";
import { LineWriter } from "../operate/lines";
import type { ActionPlan } from "./actions";
import { ActionMutex, busyMessage, type Holder } from "./mutex";

export type ActionEvent =
  { readonly kind: "line"; readonly text: string } | { readonly kind: "end"; readonly code: number };

export interface RunningAction extends Holder {
  readonly plan: ActionPlan;
  readonly lines: string[];
  code: number | undefined;
  readonly listeners: Set<(e: ActionEvent) => void>;
}

export interface RunnerOptions {
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  /** The secret values to redact (read when an action starts: config may change between actions). */
  readonly secrets: () => readonly string[];
  /** Called once an action has ended, with its whole (redacted) output. */
  readonly onEnd?: (a: RunningAction, output: string) => void;
}

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
const KEEP = 20;

export class ActionRunner {
  readonly mutex = new ActionMutex();
  private readonly actions = new Map<string, RunningAction>();

  constructor(private readonly opts: RunnerOptions) {}

  get(id: string): RunningAction | undefined {
    return this.actions.get(id);
  }

  /** Newest first. */
  list(): RunningAction[] {
    return [...this.actions.values()].reverse();
  }

  /** Starts `plan`, or refuses naming the running action. */
  start(plan: ActionPlan, by: string): { ok: true; action: RunningAction } | { ok: false; message: string } {
    const id = randomBytes(6).toString("hex");
    const holder: Holder = { id, action: plan.label, by, since: Date.now() };
    const slot = this.mutex.acquire(holder);
    if (!slot.ok) return { ok: false, message: busyMessage(slot.holder, Date.now()) };
    const action: RunningAction = { ...holder, plan, lines: [], code: undefined, listeners: new Set() };
    this.actions.set(id, action);
    for (const old of [...this.actions.keys()].slice(0, Math.max(0, this.actions.size - KEEP)))
      this.actions.delete(old);
    const emit = (e: ActionEvent) => {
      if (e.kind === "line") action.lines.push(e.text);
      for (const l of action.listeners) l(e);
    };
    const secrets = this.opts.secrets();
    const writer = () =>
      new LineWriter(
        (b) =>
          emit({
            kind: "line",
            text: b
              .toString("utf8")
              .replace(ANSI, "")
              .replace(/\r?\n$/, ""),
          }),
        secrets,
      );
    const out = writer();
    const err = writer();
    emit({ kind: "line", text: `$ npm run ${plan.argv[0]} -- ${plan.argv.slice(1).join(" ")}` });
    const child = spawn(process.execPath, [LAUNCHER, ...plan.argv], {
      cwd: this.opts.cwd,
      env: this.opts.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    let ended = false;
    const end = (code: number) => {
      if (ended) return;
      ended = true;
      out.flush();
      err.flush();
      action.code = code;
      emit({ kind: "line", text: `(exit ${code})` });
      slot.release();
      this.opts.onEnd?.(action, action.lines.join("\n"));
      emit({ kind: "end", code });
    };
    child.on("error", (e) => {
      emit({ kind: "line", text: `cannot start ${plan.argv[0]}: ${e.message}` });
      end(127);
    });
    child.on("close", (code, signal) => end(code ?? (signal ? 128 : 1)));
    return { ok: true, action };
  }
}
