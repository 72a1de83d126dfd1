/**
 * fleet's "magic rollback" on the host (deploy-rs's name for it): an activation must be confirmed
 * by the deploying side, or the host puts the last good release back by itself.
 *
 * - Before the switch changes anything, the activation starts a watchdog as a transient systemd
 *   unit (`systemd-run`): it outlives the SSH session and counts its deadline with the host's own
 *   `sleep`, never the deployer's clock. At the deadline, unless the deploy was decided, it stops
 *   what is left of the activation, restores what the switch saved, restarts and probes that
 *   release, writes a `reverted` line to deploy.log and releases the lock.
 * - Whoever decides first wins `mkdir .lock/decided` (atomic): the deploying side's finalize or
 *   rollback, the watchdog, or a deploy taking over a dead holder's lock. `decided/by` says who.
 * - A holder is provably gone when the presence it recorded in `.lock/owner` (the pid and start
 *   time of a process tied to its SSH connection, transport/presence.ts) no longer runs: the
 *   next deploy takes the lock over, reverts a switch the holder left undecided, and writes an
 *   `interrupted` line. A live or unrecorded presence is refused, naming the holder.
 * - `verified` holds the last release a passing gate confirmed; only the deploying side's
 *   finalize moves it, so a refresh can tell it from what `current` points at.
 */
import { emitBytes, shq } from "./quote";
import type { ServiceLayout } from "./layout";
import type { ServiceSpec } from "../model/service";
import { REAP_SCRIPT, auditLine, header } from "./service-shell";
import { restoreLines } from "./restore";

/** The watchdog's transient unit: one per service (only the lock holder starts one). */
export function watchdogUnit(spec: Pick<ServiceSpec, "unitName">): string {
  return `fleet-watchdog-${spec.unitName}`;
}

/** Where the watchdog's program and output live (outside `.lock`, which it removes). */
function files(layout: ServiceLayout): { script: string; out: string } {
  return { script: `${layout.dir}/.watchdog.sh`, out: `${layout.dir}/.watchdog.out` };
}

/** Claims the decision for `by` (exit 0), or fails when someone else has it. */
function claim(by: string): string {
  return `{ mkdir "$D/.lock/decided" 2>/dev/null && echo ${shq(by)} > "$D/.lock/decided/by"; }`;
}

/**
 * The watchdog's program: sleeps `deadlineMs`, then, if this activation's lock is still held and
 * undecided, reverts it. Its output (the restored release's probe) goes to `.watchdog.out`, where
 * a deploying side that decided too late reads it.
 */
export function watchdogProgram(spec: ServiceSpec, layout: ServiceLayout, token: string, deadlineMs: number): string {
  const f = files(layout);
  const seconds = (Math.max(0, deadlineMs) / 1000).toFixed(3);
  const note = `reverted by the host: no confirmation within ${Math.round(deadlineMs / 1000)} s of the switch (the deploying side is gone, or its connection is)`;
  return (
    header(layout, spec.runAs).replace("set -eu", "set -u") +
    [
      `sleep ${seconds}`,
      `[ "$(sed -n 's/^token=//p' "$D/.lock/owner" 2>/dev/null)" = ${shq(token)} ] || exit 0`,
      `${claim("host")} || exit 0`,
      `exec > ${shq(f.out)} 2>&1`,
      `t0=$(date +%s%3N)`,
      `attempted=$(sed -n 's/^release=//p' "$D/.lock/owner")`,
      REAP_SCRIPT,
      "reap",
      `( set -e; ${restoreLines(spec, layout, { probe: true }).join("\n")} ) > "$D/.watchdog.probe"; rc=$?`,
      `cat "$D/.watchdog.probe"; restored=$(sed -n 's/^restored=//p' "$D/.watchdog.probe"); verdict=$(sed -n 's/^result=//p' "$D/.watchdog.probe")`,
      `if [ $rc -eq 0 ] && { [ "$verdict" = ok ] || [ "$restored" = nothing ]; }; then res=reverted; else res=critical; fi`,
      // The host has no database restore of its own: say what stays applied (README: Reliability).
      `mig=; [ -e "$D/.lock/migrated" ] && mig="; the migrations \${attempted:-the new release} ran stay applied${spec.restoreOnRollback ? " (restoreOnRollback is the deploying side's: the host did not restore the database)" : ""}"`,
      `ms=$(( $(date +%s%3N) - t0 ))`,
      auditLine(layout, {
        who: "host-watchdog",
        from: `"\${restored:--}"`,
        to: `"\${attempted:--}"`,
        result: `"$res"`,
        note: `" ${note}; \${restored:-nothing} restored, its health: \${verdict:-not probed} (exit $rc)$mig"`,
      }),
      `rm -rf "$D/.lock"`,
      "",
    ].join("\n")
  );
}

/**
 * The activation's lines that start the watchdog, run after `.rollback/` is saved and before
 * anything changes. `.lock/switched` tells a takeover that this attempt may have changed what
 * serves. No systemd-run: refused before the switch (EXIT.noWatchdog).
 */
export function startWatchdogLines(
  spec: ServiceSpec,
  layout: ServiceLayout,
  token: string,
  deadlineMs: number,
  noWatchdogExit: number,
): string[] {
  const unit = shq(watchdogUnit(spec));
  const f = files(layout);
  return [
    `command -v systemd-run >/dev/null 2>&1 || { echo "systemd-run is not on this host: fleet's watchdog needs it to revert an activation nobody confirms" >&2; exit ${noWatchdogExit}; }`,
    `${emitBytes(watchdogProgram(spec, layout, token, deadlineMs))} > ${shq(f.script)}`,
    `: > "$D/.lock/switched"`,
    `systemctl stop ${unit} 2>/dev/null || true; systemctl reset-failed ${unit} 2>/dev/null || true`,
    `systemd-run --unit=${unit} --collect --quiet --property=KillMode=control-group /bin/sh ${shq(f.script)} || { rm -f "$D/.lock/switched"; echo "systemd-run could not start fleet's watchdog" >&2; exit ${noWatchdogExit}; }`,
    `echo watchdog=${shq(watchdogUnit(spec))}`,
  ];
}

/**
 * The deploying side decides (finalize, or its rollback): claims the decision, then stops the
 * watchdog. When the watchdog already decided, `by_host=1`: the script waits (up to
 * `waitMs`) for it to finish, prints what it printed, and exits `revertedExit`.
 */
export function decideLines(spec: ServiceSpec, layout: ServiceLayout, waitMs: number, revertedExit: number): string[] {
  const unit = shq(watchdogUnit(spec));
  const f = files(layout);
  const tenths = Math.ceil(waitMs / 100);
  return [
    `if [ -e "$D/.lock/switched" ] && ! ${claim("deployer")}; then`,
    `  if [ "$(cat "$D/.lock/decided/by" 2>/dev/null)" != deployer ]; then`,
    `    echo by_host=1; i=0; while systemctl is-active --quiet ${unit} && [ $i -lt ${tenths} ]; do sleep 0.1; i=$((i + 1)); done`,
    `    cat ${shq(f.out)} 2>/dev/null || true; exit ${revertedExit}`,
    `  fi`,
    `fi`,
    `systemctl stop ${unit} 2>/dev/null || true; rm -f ${shq(f.script)}`,
  ];
}

/**
 * Shell functions for whoever finds the lock held: `holder_gone` (exit 0 when the presence the
 * holder recorded provably no longer runs) and `take_over <who>` (stops the holder's watchdog and
 * leftover script, reverts a switch it left undecided, writes its `interrupted` line and removes
 * the lock). Needs REAP_SCRIPT's `reap` defined.
 */
/**
 * `presence_gone <lock dir>`: exit 0 when the presence (`<pid> <start time>`) its owner file
 * records provably no longer runs; a lock without one is never judged gone. The deploys' and the
 * reboot's takeovers share it.
 */
export const PRESENCE_GONE = [
  `presence_gone() {`,
  `  k=$(sed -n 's/^presence=//p' "$1/owner" 2>/dev/null)`,
  `  [ -n "$k" ] || return 1`,
  `  kp=\${k%% *}; ks=\${k#* }`,
  `  [ -r "/proc/$kp/stat" ] && [ "$(cut -d' ' -f22 "/proc/$kp/stat" 2>/dev/null)" = "$ks" ] && return 1`,
  `  return 0`,
  `}`,
].join("\n");

export function takeoverFunctions(spec: ServiceSpec, layout: ServiceLayout): string {
  const unit = shq(watchdogUnit(spec));
  return [
    PRESENCE_GONE,
    `holder_gone() { presence_gone "$D/.lock"; }`,
    `take_over() {`,
    `  t0=$(date +%s%3N)`,
    // The watchdog is reverting right now: let it finish (it releases the lock), then retry.
    `  if [ "$(cat "$D/.lock/decided/by" 2>/dev/null)" = host ]; then`,
    `    i=0; while systemctl is-active --quiet ${unit} && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done; return 0`,
    `  fi`,
    `  sed 's/^/stale_/' "$D/.lock/owner"; echo took_over=1`,
    `  systemctl stop ${unit} 2>/dev/null || true`,
    `  reap`,
    `  holder=$(sed -n 's/^who=//p' "$D/.lock/owner"); attempted=$(sed -n 's/^release=//p' "$D/.lock/owner")`,
    `  note=" the deploying side was gone (its connection ended) before it finished; found by $1"`,
    `  if [ -e "$D/.lock/switched" ] && [ ! -d "$D/.lock/decided" ]; then`,
    // (its facts go to stderr: this script's stdout is the new deploy's, its gate evidence included)
    `    ( ${restoreLines(spec, layout, { probe: false }).join("\n    ")} ) >&2`,
    `    note="$note; it had switched: $(readlink "$D/current" 2>/dev/null | sed 's|.*/||') restored"`,
    `  fi`,
    `  cur=$(readlink "$D/current" 2>/dev/null || true)`,
    `  ms=$(( $(date +%s%3N) - t0 ))`,
    `  ${auditLine(layout, { who: `"\${holder:-unknown}"`, from: `"\${cur##*/}"`, to: `"\${attempted:--}"`, result: "interrupted", note: `"$note"` })}`,
    `  rm -rf "$D/.lock" "$D/.watchdog.sh"`,
    `}`,
  ].join("\n");
}
