/**
 * The shell every service script shares: its header, the exit codes the provider tells apart,
 * recording and reaping a script's process group, the restart and the health probe, putting back
 * what an activation saved, and the deploy.log line. Pure builders; quoting via commands/quote.ts.
 */
import { shq } from "./quote";
import type { ServiceLayout } from "./layout";
import type { ServiceSpec } from "../model/service";
import { MARK_FUNCTIONS, commitFactLine } from "./release-marks";

/** Exit codes the provider tells apart. */
export const EXIT = {
  locked: 75,
  unitNotOurs: 65,
  missingUser: 67,
  missingTool: 68,
  restartFailed: 70,
  lowDisk: 69,
  /** The host's watchdog decided this activation (no confirmation came in time) and reverted it. */
  reverted: 71,
  /** The host cannot run the watchdog (no systemd-run): nothing was switched. */
  noWatchdog: 72,
  /** The lock is no longer this deploy's (the watchdog released it, or another deploy took it over). */
  lockLost: 76,
  /** The host's proxy refused its config, does not run, has no free instance port, or does not serve the switch. */
  proxyFailed: 73,
} as const;

export function header(layout: ServiceLayout, runAs: string): string {
  return [
    "set -eu",
    "umask 022",
    `D=${shq(layout.dir)}`,
    `RUN_AS=${shq(runAs)}`,
    `phase() { printf 'fleet-phase: %s\\n' "$1" >&2; }`,
    // Install and build run as the service's account, with its HOME; `as_user <script> [args…]`.
    `as_user() { s_=$1; shift; if [ "$RUN_AS" = "$(id -un)" ]; then /bin/sh -c "$s_" sh "$@"; else HOME=$(getent passwd "$RUN_AS" | cut -d: -f6) command -p runuser -u "$RUN_AS" -- /bin/sh -c "$s_" sh "$@"; fi; }`,
    MARK_FUNCTIONS,
    "",
  ].join("\n");
}

/** The system's own PATH: what root's steps find commands through, never a service's. */
export const ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * What the service's own shell runs first: the env file's assignments from fd 3 (the user could
 * not open the 0600 file itself), exported as `set -a; . file` did, then the `NAME=value` words
 * fleet adds, then the command.
 */
const SERVICE_ENV_SHELL = `set -a; eval "$(cat <&3)"; exec 3<&-; c_=$1; shift; for a_ in "$@"; do export "$a_"; done; set +a; exec /bin/sh -c "$c_"`;

/**
 * `service_env_run <user> <command> [NAME=value…]`, with the env file open on fd 3: runs the
 * command as the service's user with the service's environment. Root's shell never sources the
 * env file (it may set PATH or LD_* to the service's own trees): it clears its environment with
 * `env -i`, finds `runuser` through ROOT_PATH, and only the user's shell reads the env (issue 29).
 */
export const SERVICE_ENV_RUN = [
  `service_env_run() {`,
  `  su_=$1; shift`,
  `  if [ "$su_" = "$(id -un)" ]; then command -p env -i PATH=${ROOT_PATH} \${HOME+"HOME=$HOME"} \${LANG+"LANG=$LANG"} /bin/sh -c ${shq(SERVICE_ENV_SHELL)} sh "$@"`,
  `  else command -p env -i PATH=${ROOT_PATH} \${LANG+"LANG=$LANG"} runuser -u "$su_" -- /bin/sh -c ${shq(SERVICE_ENV_SHELL)} sh "$@"; fi`,
  `}`,
].join("\n");

/** Exits 126 from a function when its env file (`$1`) is a link: fleet writes regular files only. */
export const ENV_FILE_NOT_LINK = `[ ! -L "$1" ] || { echo "refusing to read the env file $1: it is a symbolic link (fleet writes a regular file)" >&2; return 126; }`;

/**
 * Records the running script's process group (and its leader's start time) in the lock, so that
 * if the connection dies and the script lives on as an orphan, the deploy's next script there
 * (rollback, finalize) or whoever breaks the lock can stop it before changing anything.
 */
export const RECORD_SCRIPT = `{ pg=$(cut -d' ' -f5 /proc/$$/stat) && echo "$pg $(cut -d' ' -f22 /proc/$pg/stat)" > "$D/.lock/script"; } 2>/dev/null || true`;

/**
 * Kills the process group a previous script of this deploy recorded, if it still runs: never
 * our own group, and never a group whose leader's pid now belongs to another process.
 */
export const REAP_SCRIPT = [
  `reap() {`,
  `  [ -f "$D/.lock/script" ] || return 0`,
  `  read -r spg sst < "$D/.lock/script" || return 0`,
  `  rm -f "$D/.lock/script"`,
  `  [ -n "$spg" ] && [ "$spg" != "$(cut -d' ' -f5 /proc/$$/stat)" ] || return 0`,
  `  if [ -e "/proc/$spg" ]; then [ "$(cut -d' ' -f22 "/proc/$spg/stat" 2>/dev/null)" = "$sst" ] || return 0; fi`,
  // (dash's kill takes no "--": the negative pid names the group)
  `  if kill -KILL "-$spg" 2>/dev/null; then echo "reaped=$spg"; fi`,
  `}`,
].join("\n");

/**
 * Restart, then report the restart counter so the health gate can tell "exited and was
 * restarted" from "still starting". `reset-failed` clears a start-limit hit from earlier runs.
 */
export function restartLines(unitName: string): string {
  const unit = shq(unitName);
  return [
    `started=$(date +%s)`,
    // fleet's units disable the start limit; a unit made elsewhere may still hit it: reset, retry once.
    `if ! out=$(systemctl restart ${unit} 2>&1); then`,
    `  case "$out" in *"too quickly"*) systemctl reset-failed ${unit}; out=$(systemctl restart ${unit} 2>&1) && out=;; esac`,
    `  if [ -n "$out" ]; then`,
    `    echo "$out" >&2`,
    `    case "$out" in *"too quickly"*) echo "systemd refused the start: the unit hit its start limit (start request repeated too quickly)" >&2;; esac`,
    `    systemctl status ${unit} --no-pager -n 20 >&2 || true`,
    `    exit ${EXIT.restartFailed}`,
    `  fi`,
    `fi`,
    `eval "$(systemctl show -p NRestarts -p MainPID ${unit} | sed 's/^NRestarts=/base=/; s/^MainPID=/pid=/')"`,
    `echo "restarts=$base"`,
  ].join("\n");
}

/** Where a probe goes instead of the spec's health URLs and unit: shell words ("$port" may be in them). */
export interface ProbeTarget {
  readonly url: string;
  readonly versionUrl?: string;
  readonly unit: string;
}

/**
 * The health gate's probe, polled on the host (no round trip per probe) right after the restart,
 * in the same script. Waits until the URL answers the expected status (and body), or the timeout,
 * or the started process (`$pid`, set by the restart) exits; then, with a version endpoint, until
 * that answers 200 within the same deadline. Prints `result=ok|timeout|exited`, the last status,
 * the bodies (base64) and, on failure, this attempt's journal lines (base64). It reads no field
 * of the version body: that verdict is judgeHealth's alone (decisions/health.ts).
 */
export function probeLines(spec: Pick<ServiceSpec, "health" | "unitName">, target?: ProbeTarget): string[] {
  const h = spec.health;
  const unit = target?.unit ?? shq(spec.unitName);
  const url = target?.url ?? shq(h.url);
  const versionUrl = target?.versionUrl ?? (h.version ? shq(h.version.url) : "");
  const bodyCheck = h.bodyContains !== undefined ? ` && grep -qF -- ${shq(h.bodyContains)} "$tmp/body"` : "";
  return [
    "phase health",
    `tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT`,
    `deadline=$(( $(date +%s%3N) + ${Math.max(0, Math.floor(h.timeoutMs))} ))`,
    `result=timeout; code=000`,
    `while :; do`,
    // Cheapest check first: a healthy release passes on its first answer.
    // -g: the URL as given; curl would expand {a,b} and [1-3] into several requests.
    `  code=$(curl -gsS -o "$tmp/body" -w '%{http_code}' --max-time 2 ${url} 2>"$tmp/err" || true)`,
    `  if [ "$code" = ${shq(String(h.expectStatus))} ]${bodyCheck}; then result=ok; break; fi`,
    // kill -0 is a builtin: checking that the started process still lives costs no fork.
    `  if [ "$pid" = 0 ] || ! kill -0 "$pid" 2>/dev/null; then result=exited; break; fi`,
    `  [ "$(date +%s%3N)" -lt "$deadline" ] || break`,
    `  sleep ${(h.intervalMs / 1000).toFixed(3)}`,
    `done`,
    `echo "result=$result"`,
    `echo "status=$code"`,
    `echo "body=$(head -c 4096 "$tmp/body" 2>/dev/null | base64 -w0)"`,
    `echo "curl_error=$(head -c 1024 "$tmp/err" 2>/dev/null | base64 -w0)"`,
    h.version
      ? [
          // Polled like the health URL, within the same deadline: one slow answer under load is not a verdict.
          `if [ $result = ok ]; then`,
          `  while :; do`,
          `    vcode=$(curl -gsS -o "$tmp/version" -w '%{http_code}' --max-time 2 ${versionUrl} 2>/dev/null || true)`,
          `    [ "$vcode" = 200 ] && break`,
          `    [ "$(date +%s%3N)" -lt "$deadline" ] || break`,
          `    sleep ${(h.intervalMs / 1000).toFixed(3)}`,
          `  done`,
          `  echo "version_status=$vcode"; echo "version_body=$(head -c 4096 "$tmp/version" 2>/dev/null | base64 -w0)"`,
          `fi`,
        ].join("\n")
      : "",
    // Evidence, only when it is needed: each systemctl costs a round of systemd work.
    `if [ $result != ok ]; then`,
    `  echo "active=$(systemctl is-active ${unit} 2>/dev/null || true)"`,
    `  echo "restarts_now=$(systemctl show -p NRestarts --value ${unit})"`,
    `  echo "journal=$(journalctl -u ${unit} --since "@$started" -n 50 --no-pager -o short-iso 2>&1 | base64 -w0)"`,
    `fi`,
  ];
}

/**
 * Puts back what the activation saved in `.rollback/` (`current`, env, unit) and restarts that
 * release, then probes it (when `probe`). After a first deploy (nothing saved to go back to) it
 * stops the unit and removes it. Prints `restored=<release>|nothing`. The deploying side's
 * rollback, the host's watchdog and a takeover of a dead deploy's lock all run these lines.
 */
export function restoreInPlaceLines(
  spec: ServiceSpec,
  layout: ServiceLayout,
  options: { unstage?: boolean; probe: boolean },
): string[] {
  const unit = shq(spec.unitName);
  const unitFile = shq(layout.unitFile);
  return [
    `failed=$(readlink "$D/current" 2>/dev/null || true)`,
    `rm -f ${shq(`${layout.envFile}.fleet-tmp`)} ${shq(`${layout.unitFile}.fleet-tmp`)}`,
    // The failed release sorts oldest, so retention prunes it first; its files stay as evidence.
    // (A switch that stopped before moving `current` left the previous release there: not failed.)
    `if [ -n "$failed" ] && [ "$failed" != "$(cat "$D/.rollback/current" 2>/dev/null)" ] && [ -d "$D/$failed" ]; then`,
    options.unstage
      ? // Its migrations were undone (the database restored): it must be staged and migrated again.
        `  mark_clear "\${failed##*/}" staged; mark_clear "\${failed##*/}" activated`
      : `  mark_set "\${failed##*/}" activated 0`,
    `fi`,
    `if [ -f "$D/.rollback/env" ]; then cp -p "$D/.rollback/env" ${shq(layout.envFile)}; fi`,
    `if [ -f "$D/.rollback/current" ]; then`,
    `  ln -sfn "$(cat "$D/.rollback/current")" "$D/.current.tmp" && mv -Tf "$D/.current.tmp" "$D/current"`,
    `  if [ -f "$D/.rollback/unit" ] && ! cmp -s "$D/.rollback/unit" ${unitFile}; then cp -p "$D/.rollback/unit" ${unitFile}; systemctl daemon-reload; fi`,
    `  prev=$(readlink "$D/current"); echo "restored=\${prev##*/}"`,
    `  ${commitFactLine("restored_commit", '"${prev##*/}"')}`,
    `  ${restartLines(spec.unitName).split("\n").join("\n  ")}`,
    ...(options.probe ? probeLines(spec).map((l) => `  ${l}`) : []),
    `else`,
    `  systemctl disable --now ${unit} 2>/dev/null || true`,
    `  rm -f "$D/current" ${unitFile}; systemctl daemon-reload`,
    `  echo restored=nothing`,
    `fi`,
  ];
}

/** The results a deploy.log line can carry. */
export type AuditResult = "ok" | "failed" | "rolled-back" | "critical" | "interrupted" | "reverted";

/**
 * Appends one deploy.log line: `<time> <who> <from> -> <to> <result> <seconds>s <note>`. Each
 * argument is a shell word (quoted, or a `"$var"` the script set); `msVar` names the variable
 * holding the attempt's duration in ms.
 */
export function auditLine(
  layout: ServiceLayout,
  words: { who: string; from: string; to: string; result: string; note: string },
  msVar = "ms",
): string {
  return `printf '%s %s %s -> %s %s %d.%03ds%s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" ${words.who} ${words.from} ${words.to} ${words.result} $((${msVar} / 1000)) $((${msVar} % 1000)) ${words.note} >> ${shq(layout.auditLog)}`;
}

/** A one-line note for deploy.log, as a shell word (with its leading space). */
export function noteWord(note: string | undefined): string {
  return shq(note ? ` ${note.replace(/\s+/g, " ").slice(0, 300)}` : "");
}

/** True (exit 0) while `.lock/owner` names this token: the lock is still this deploy's. */
export function lockIs(token: string): string {
  return `[ "$(sed -n 's/^token=//p' "$D/.lock/owner" 2>/dev/null)" = ${shq(token)} ]`;
}
