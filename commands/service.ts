import { emitBytes, shq } from "./quote";
import { UNIT_MARKER, depsDir, releaseDir, serviceLayout, type ServiceLayout } from "./layout";
import type { ServiceSpec } from "../model/service";
import { diskGuard } from "./host";
import { createHash } from "crypto";

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * Pure builders for every remote step of a service deploy. Each returns a POSIX sh script that
 * travels on stdin (transport.runScript), so values in it never show in `ps`. Every value is
 * quoted through commands/quote.ts. Scripts report facts as `key=value` lines on stdout and name
 * their phase on stderr (`fleet-phase: build`) so a failure says which part failed.
 */

/** Exit codes the provider tells apart. */
export const EXIT = {
  locked: 75,
  unitNotOurs: 65,
  missingUser: 67,
  missingTool: 68,
  restartFailed: 70,
  lowDisk: 69,
} as const;

function header(layout: ServiceLayout, runAs: string): string {
  return [
    "set -eu",
    "umask 022",
    `D=${shq(layout.dir)}`,
    `RUN_AS=${shq(runAs)}`,
    `phase() { printf 'fleet-phase: %s\\n' "$1" >&2; }`,
    // Install and build run as the service's account, with its HOME.
    `as_user() { if [ "$RUN_AS" = "$(id -un)" ]; then /bin/sh -c "$1"; else HOME=$(getent passwd "$RUN_AS" | cut -d: -f6) runuser -u "$RUN_AS" -- /bin/sh -c "$1"; fi; }`,
    "",
  ].join("\n");
}

/**
 * A release that can be activated as it is: staged, built and migrated to the end (`.fleet-staged`),
 * or activated before (`.fleet-activated`, which releases staged before that marker existed have).
 * A release dir without either is what an interrupted deploy left half-built: it is staged again.
 */
function releaseReady(rel: string): string {
  return `{ [ -f ${shq(rel + "/.fleet-staged")} ] || [ -f ${shq(rel + "/.fleet-activated")} ]; }`;
}

/**
 * Records the running script's process group (and its leader's start time) in the lock, so that
 * if the connection dies and the script lives on as an orphan, the deploy's next script there
 * (rollback, finalize) or whoever breaks the lock can stop it before changing anything.
 */
const RECORD_SCRIPT = `{ pg=$(cut -d' ' -f5 /proc/$$/stat) && echo "$pg $(cut -d' ' -f22 /proc/$pg/stat)" > "$D/.lock/script"; } 2>/dev/null || true`;

/**
 * Kills the process group a previous script of this deploy recorded, if it still runs: never
 * our own group, and never a group whose leader's pid now belongs to another process.
 */
const REAP_SCRIPT = [
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

export function layoutOf(spec: Pick<ServiceSpec, "root" | "name" | "unitName">): ServiceLayout {
  return serviceLayout(spec.root, spec.name, spec.unitName);
}

/** Who holds the lock: written into `.lock/owner`, shown to whoever is refused. */
export interface LockOwner {
  readonly who: string;
  readonly machine: string;
  readonly pid: number;
  readonly since: string;
  readonly release: string;
  /** Unique per deploy: tells this deploy's lock from one a dead deploy of the same process left. */
  readonly token: string;
}

export function renderLockOwner(owner: LockOwner): string {
  return `who=${owner.who}\nmachine=${owner.machine}\npid=${owner.pid}\nsince=${owner.since}\nrelease=${owner.release}\ntoken=${owner.token}\n`;
}

/** Refuses a host that cannot take the service (tools, user, foreign unit, disk), then takes the lock. */
function checksAndLock(spec: ServiceSpec, owner: LockOwner): string[] {
  const layout = layoutOf(spec);
  return [
    "phase checks",
    `command -v curl >/dev/null 2>&1 || { echo "curl is not installed on this host; fleet's health check needs it (bootstrap the host with curl)" >&2; exit ${EXIT.missingTool}; }`,
    `id -u "$RUN_AS" >/dev/null 2>&1 || { echo "user $RUN_AS does not exist on this host (runAs); create it or bootstrap the host" >&2; exit ${EXIT.missingUser}; }`,
    `if [ -e ${shq(layout.unitFile)} ] && ! grep -qxF ${shq(UNIT_MARKER)} ${shq(layout.unitFile)}; then`,
    `  echo ${shq(`${layout.unitFile} exists and is not managed by fleet; refusing to overwrite it (choose another unitName, or remove that unit)`)} >&2; exit ${EXIT.unitNotOurs}`,
    "fi",
    diskGuard(spec.root, spec.minFreeDiskMb, EXIT.lowDisk),
    `mkdir -p "$D/releases" "$D/deps" "$D/shared" "$D/.staging"`,
    "phase lock",
    // The holder writes its owner file just after its mkdir: a deploy refused in that instant
    // waits for it (up to 1 s), so that the refusal names who holds the lock.
    `if ! mkdir "$D/.lock" 2>/dev/null; then echo locked=1; i=0; while [ ! -s "$D/.lock/owner" ] && [ -d "$D/.lock" ] && [ $i -lt 20 ]; do sleep 0.05; i=$((i + 1)); done; cat "$D/.lock/owner" 2>/dev/null || true; exit ${EXIT.locked}; fi`,
    `${emitBytes(renderLockOwner(owner))} > "$D/.lock/owner"`,
  ];
}

/**
 * Step 1: checks the host can take this service, takes the lock, and reports what is already
 * there (current release, whether the release and its deps are present, the retained releases
 * with their activation times).
 */
export function prepareScript(spec: ServiceSpec, owner: LockOwner): string {
  const layout = layoutOf(spec);
  const rel = releaseDir(layout, spec.releaseId);
  const deps = spec.install ? depsDir(layout, spec.install.hash) : "";
  return (
    header(layout, spec.runAs) +
    [
      ...checksAndLock(spec, owner),
      "phase inspect",
      `cur=$(readlink "$D/current" 2>/dev/null || true); echo "current=\${cur##*/}"`,
      `${releaseReady(rel)} && echo release_present=1 || echo release_present=0`,
      deps
        ? `[ -f ${shq(deps + "/.fleet-complete")} ] && echo deps_present=1 || echo deps_present=0`
        : "echo deps_present=1",
      `for r in "$D"/releases/*/; do [ -d "$r" ] || continue; r=\${r%/}; echo "release=\${r##*/} $(cat "$r/.fleet-activated" 2>/dev/null || echo 0) $(cat "$r/.fleet-deps" 2>/dev/null || echo -)"; done`,
      "",
    ].join("\n")
  );
}

/** Removes a lock only if it still holds exactly the owner we judged stale (compare-and-delete). */
export function breakLockScript(spec: ServiceSpec, staleOwnerText: string): string {
  const layout = layoutOf(spec);
  return (
    header(layout, spec.runAs) +
    [
      `expected=$(${emitBytes(staleOwnerText)}; echo x)`,
      `actual=$(cat "$D/.lock/owner" 2>/dev/null; echo x)`,
      REAP_SCRIPT,
      // The holder is gone, but the script it ran there may still be running: stop it first.
      `if [ "$expected" = "$actual" ]; then reap; rm -rf "$D/.lock"; echo broken=1; else echo broken=0; fi`,
      "",
    ].join("\n")
  );
}

/** Step 2 (when the release is not on the host): unpack the archive on stdin into staging. */
export function uploadCommand(spec: ServiceSpec): string {
  const layout = layoutOf(spec);
  const staging = `${layout.staging}/${spec.releaseId}`;
  const inner = `rm -rf ${shq(staging)} && mkdir -p ${shq(staging)} && tar -xzf - -C ${shq(staging)}`;
  return spec.connection.user === "root" ? inner : `sudo -n /bin/sh -c ${shq(inner)}`;
}

/** Links what the deps dir has and the release lacks (e.g. `.venv`, `frontend/node_modules`). */
const LINK_MISSING = [
  `link_missing() {`,
  `  for e in "$1"/* "$1"/.[!.]* "$1"/..?*; do`,
  `    [ -e "$e" ] || [ -L "$e" ] || continue`,
  `    n=\${e##*/}; [ "$n" = .fleet-complete ] && continue`,
  `    if [ -e "$2/$n" ] || [ -L "$2/$n" ]; then`,
  `      if [ -d "$e" ] && [ ! -L "$e" ] && [ -d "$2/$n" ] && [ ! -L "$2/$n" ]; then link_missing "$e" "$2/$n"; fi`,
  `    else ln -s "$e" "$2/$n"; fi`,
  `  done`,
  `}`,
].join("\n");

/**
 * Step 3 (when the dependency set is new): copy the `when` files into `deps/<hash>/`, run
 * `install` there once, and mark it complete. Installs run in their final place because tools
 * like venv bake absolute paths in.
 */
export function installScript(spec: ServiceSpec, fromStaging: boolean): string {
  if (!spec.install) throw new Error("installScript needs spec.install");
  const layout = layoutOf(spec);
  const src = fromStaging ? `${layout.staging}/${spec.releaseId}` : releaseDir(layout, spec.releaseId);
  const target = depsDir(layout, spec.install.hash);
  const copies = spec.install.when.map((file) => {
    const dir = file.includes("/") ? file.slice(0, file.lastIndexOf("/")) : "";
    return [dir ? `mkdir -p "$T"/${shq(dir)}` : "", `cp -p "$S"/${shq(file)} "$T"/${shq(file)}`]
      .filter(Boolean)
      .join(" && ");
  });
  return (
    header(layout, spec.runAs) +
    [
      "phase install",
      RECORD_SCRIPT,
      `S=${shq(src)}; T=${shq(target)}`,
      `rm -rf "$T"; mkdir -p "$T"`,
      ...copies,
      `chown -R "$RUN_AS" "$T"`,
      `cd "$T"`,
      `as_user ${shq(spec.install.run)}`,
      `touch "$T/.fleet-complete"`,
      "",
    ].join("\n")
  );
}

export interface ActivatePlan {
  /** The release is new: move it out of staging, link deps, write REVISION, build. */
  readonly stage: boolean;
  /** The env file content (secrets included: this script travels on stdin). */
  readonly envFile: string;
}

/**
 * Step 4: stage (deps, REVISION, build), migrate, switch, restart and probe the health gate, in
 * one round trip. Saves what it replaces into `.rollback/` first, so the rollback script can put
 * back the exact previous state: `current`, unit, env. Everything before the `switch` phase
 * leaves the serving release untouched. It ends holding the lock and judging nothing: the
 * deploying side judges the probe's evidence (decisions/health.ts), then finalizes or rolls back.
 */
export function activateScript(spec: ServiceSpec, plan: ActivatePlan): string {
  return header(layoutOf(spec), spec.runAs) + activateLines(spec, plan).join("\n");
}

/**
 * The one-round-trip path to the gate for a release the host still has (a rollback, a
 * re-apply): checks, lock, then the activation. If the release or its deps turn out to be gone,
 * it releases the lock and prints `fast=0`, and the caller takes the full path.
 */
export function fastActivateScript(spec: ServiceSpec, owner: LockOwner, plan: ActivatePlan): string {
  const layout = layoutOf(spec);
  const rel = releaseDir(layout, spec.releaseId);
  const deps = spec.install ? ` && [ -f ${shq(depsDir(layout, spec.install.hash) + "/.fleet-complete")} ]` : "";
  return (
    header(layout, spec.runAs) +
    [
      ...checksAndLock(spec, owner),
      `if ! { ${releaseReady(rel)}${deps}; }; then rm -rf "$D/.lock"; echo fast=0; exit 0; fi`,
      `cur=$(readlink "$D/current" 2>/dev/null || true); echo "current=\${cur##*/}"`,
      ...activateLines(spec, plan),
    ].join("\n")
  );
}

function activateLines(spec: ServiceSpec, plan: ActivatePlan): string[] {
  const layout = layoutOf(spec);
  const rel = releaseDir(layout, spec.releaseId);
  const envTmp = `${layout.envFile}.fleet-tmp`;
  const unitTmp = `${layout.unitFile}.fleet-tmp`;
  const unitDiffers = `[ ! -f ${shq(layout.unitFile)} ] || [ "$(sha256sum < ${shq(layout.unitFile)} | cut -c1-64)" != ${shq(sha256(spec.unit))} ]`;
  const lines: string[] = [RECORD_SCRIPT, `t0=$(date +%s%3N)`, `R=${shq(rel)}`, LINK_MISSING];
  if (plan.stage) {
    lines.push(
      "phase stage",
      `rm -rf "$R"; mv ${shq(`${layout.staging}/${spec.releaseId}`)} "$R"`,
      `printf '%s\\n' ${shq(spec.commit)} > "$R/REVISION"`,
      `printf '%s\\n' ${shq(spec.install?.hash ?? "-")} > "$R/.fleet-deps"`,
    );
    if (spec.install) lines.push(`link_missing ${shq(depsDir(layout, spec.install.hash))} "$R"`);
    lines.push(`chown -R "$RUN_AS" "$R"`);
    if (spec.build) {
      // A failed build removes the half-built release: it never served, so it is no evidence.
      lines.push("phase build", `(cd "$R" && as_user ${shq(spec.build)}) || { rc=$?; rm -rf "$R"; exit $rc; }`);
    }
  } else if (spec.install) {
    // A retained release re-activated with another dependency set (install.run changed).
    lines.push(
      "phase stage",
      `if [ "$(cat "$R/.fleet-deps" 2>/dev/null)" != ${shq(spec.install.hash)} ]; then`,
      `  for l in $(find "$R" -type l -lname "$D/deps/*"); do rm -f "$l"; done`,
      `  link_missing ${shq(depsDir(layout, spec.install.hash))} "$R"`,
      `  printf '%s\\n' ${shq(spec.install.hash)} > "$R/.fleet-deps"`,
      "fi",
    );
  }
  if (plan.stage && spec.migrate) {
    // Migrations run once per new release, with its environment, before anything switches; a
    // release re-activated from retention (a rollback) does not migrate again.
    lines.push(
      "phase migrate",
      `(umask 077 && ${emitBytes(plan.envFile)} > "$D/.migrate-env")`,
      // The env file may set any variable, the script's own (D, RUN_AS, PATH) included: after
      // sourcing it, only positional parameters are used, and rm comes from the default PATH.
      `migrate_as() { set -a; . "$1"; set +a; command -p rm -f "$1"; if [ "$2" = "$3" ]; then /bin/sh -c "$4"; else command -p runuser -u "$2" -- /bin/sh -c "$4"; fi; }`,
      `(cd "$R" && migrate_as "$D/.migrate-env" "$RUN_AS" "$(id -un)" ${shq(spec.migrate)}) || { rc=$?; rm -f "$D/.migrate-env"; exit $rc; }`,
      `echo migrated=1`,
    );
  }
  // Staged, built and migrated to the end: from here on the release may be re-activated as it is.
  if (plan.stage) lines.push(`: > "$R/.fleet-staged"`);
  lines.push(
    "phase switch",
    `rm -rf "$D/.rollback"; mkdir -m 700 "$D/.rollback"`,
    `prev=$(readlink "$D/current" 2>/dev/null || true)`,
    `if [ -n "$prev" ]; then printf '%s' "$prev" > "$D/.rollback/current"; fi`,
    `if [ -f ${shq(layout.unitFile)} ]; then cp -p ${shq(layout.unitFile)} "$D/.rollback/unit"; fi`,
    `if [ -f ${shq(layout.envFile)} ]; then cp -p ${shq(layout.envFile)} "$D/.rollback/env"; fi`,
    // Everything the rollback needs is saved: only now may the switch change anything.
    `: > "$D/.rollback/saved"`,
    // What needs disk space is written first (a full disk fails here, before any change); then
    // the switch commits with renames back to back: a server that dies at any point boots the
    // old release with its env, or the new one with its own (never old code with the new env),
    // and the slow daemon-reload comes after the files are in place.
    `(umask 077 && ${emitBytes(plan.envFile)} > ${shq(envTmp)}) && chmod 600 ${shq(envTmp)}`,
    `if ${unitDiffers}; then (umask 077 && ${emitBytes(spec.unit)} > ${shq(unitTmp)}) && chmod 644 ${shq(unitTmp)}; fi`,
    `date +%s%3N > "$R/.fleet-activated"`,
    `ln -sfn ${shq(`releases/${spec.releaseId}`)} "$D/.current.tmp" && mv -Tf "$D/.current.tmp" "$D/current"`,
    `mv -f ${shq(envTmp)} ${shq(layout.envFile)}`,
    // daemon-reload only when the unit changed: it costs a round of systemd work.
    `if ${unitDiffers}; then`,
    `  mv -f ${shq(unitTmp)} ${shq(layout.unitFile)}`,
    `  systemctl daemon-reload; systemctl enable --quiet ${shq(spec.unitName)} 2>/dev/null || true; echo unit_changed=1`,
    `fi`,
  );
  lines.push(
    `echo "previous=\${prev##*/}"`,
    `if [ -n "$prev" ] && [ -f "$D/$prev/REVISION" ]; then echo "previous_commit=$(cat "$D/$prev/REVISION")"; fi`,
    "phase restart",
    restartLines(spec.unitName),
    ...probeLines(spec),
    "",
  );
  return lines;
}

/**
 * Restart, then report the restart counter so the health gate can tell "exited and was
 * restarted" from "still starting". `reset-failed` clears a start-limit hit from earlier runs.
 */
function restartLines(unitName: string): string {
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

/**
 * The health gate's probe, polled on the host (no round trip per probe) right after the restart,
 * in the same script. Waits until the URL answers the expected status (and body), or the timeout,
 * or the started process (`$pid`, set by the restart) exits; then, with a version endpoint, until
 * that answers 200 within the same deadline. Prints `result=ok|timeout|exited`, the last status,
 * the bodies (base64) and, on failure, this attempt's journal lines (base64). It reads no field
 * of the version body: that verdict is judgeHealth's alone (decisions/health.ts).
 */
function probeLines(spec: ServiceSpec): string[] {
  const h = spec.health;
  const unit = shq(spec.unitName);
  const bodyCheck = h.bodyContains !== undefined ? ` && grep -qF -- ${shq(h.bodyContains)} "$tmp/body"` : "";
  return [
    "phase health",
    `tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT`,
    `deadline=$(( $(date +%s%3N) + ${Math.max(0, Math.floor(h.timeoutMs))} ))`,
    `result=timeout; code=000`,
    `while :; do`,
    // Cheapest check first: a healthy release passes on its first answer.
    // -g: the URL as given; curl would expand {a,b} and [1-3] into several requests.
    `  code=$(curl -gsS -o "$tmp/body" -w '%{http_code}' --max-time 2 ${shq(h.url)} 2>"$tmp/err" || true)`,
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
          `    vcode=$(curl -gsS -o "$tmp/version" -w '%{http_code}' --max-time 2 ${shq(h.version.url)} 2>/dev/null || true)`,
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
 * Puts back what `activateScript` saved: `current`, the unit and the env file, then restarts
 * the previous release and probes its health. After a first deploy (nothing to go back to) it stops the unit and
 * removes it, so a broken release is not left crash-looping. A no-op when nothing was switched.
 */
export function rollbackScript(spec: ServiceSpec, options: { unstage?: boolean } = {}): string {
  const layout = layoutOf(spec);
  const unit = shq(spec.unitName);
  const unitFile = shq(layout.unitFile);
  return (
    header(layout, spec.runAs) +
    [
      "phase rollback",
      // What is left of the activation (its connection died) must not act after the rollback.
      REAP_SCRIPT,
      "reap",
      // Not saved: the switch stopped before changing anything, so there is nothing to undo.
      `[ -f "$D/.rollback/saved" ] || { echo restored=none; exit 0; }`,
      `failed=$(readlink "$D/current" 2>/dev/null || true)`,
      `rm -f ${shq(`${layout.envFile}.fleet-tmp`)} ${shq(`${layout.unitFile}.fleet-tmp`)}`,
      // The failed release sorts oldest, so retention prunes it first; its files stay as evidence.
      // (A switch that stopped before moving `current` left the previous release there: not failed.)
      `if [ -n "$failed" ] && [ "$failed" != "$(cat "$D/.rollback/current" 2>/dev/null)" ] && [ -d "$D/$failed" ]; then`,
      options.unstage
        ? // Its migrations were undone (the database restored): it must be staged and migrated again.
          `  rm -f "$D/$failed/.fleet-staged" "$D/$failed/.fleet-activated"`
        : `  echo 0 > "$D/$failed/.fleet-activated"`,
      `fi`,
      `if [ -f "$D/.rollback/env" ]; then cp -p "$D/.rollback/env" ${shq(layout.envFile)}; fi`,
      `if [ -f "$D/.rollback/current" ]; then`,
      `  ln -sfn "$(cat "$D/.rollback/current")" "$D/.current.tmp" && mv -Tf "$D/.current.tmp" "$D/current"`,
      `  if [ -f "$D/.rollback/unit" ] && ! cmp -s "$D/.rollback/unit" ${unitFile}; then cp -p "$D/.rollback/unit" ${unitFile}; systemctl daemon-reload; fi`,
      `  prev=$(readlink "$D/current"); echo "restored=\${prev##*/}"`,
      `  [ -f "$D/$prev/REVISION" ] && echo "restored_commit=$(cat "$D/$prev/REVISION")"`,
      `  ${restartLines(spec.unitName).split("\n").join("\n  ")}`,
      ...probeLines(spec).map((l) => `  ${l}`),
      `else`,
      `  systemctl disable --now ${unit} 2>/dev/null || true`,
      `  rm -f "$D/current" ${unitFile}; systemctl daemon-reload`,
      `  echo restored=nothing`,
      `fi`,
      "",
    ].join("\n")
  );
}

/** One line of deploy.log: when, who, from → to, result, duration, note. */
export interface AuditEntry {
  readonly who: string;
  /** The release before ("" for none). */
  readonly from: string;
  readonly to: string;
  readonly result: "ok" | "failed" | "rolled-back" | "critical";
  readonly note?: string;
}

export interface FinalizeArgs {
  /** Releases to delete (decided by decisions/retention.ts). */
  readonly deleteReleases: readonly string[];
  readonly audit: AuditEntry;
  /** Time the deploy spent before this script, in ms; the script adds its own. */
  readonly elapsedBeforeMs: number;
}

/**
 * The last step of every deploy, run once its outcome is decided (the gate judged on the
 * deploying side, or a step failed): prune releases and the deps sets no remaining release uses,
 * drop staging, append the audit line (with the duration), release the lock. `.rollback/` stays
 * until the next switch, so the deploying side can still put the previous release back.
 */
export function finalizeScript(spec: ServiceSpec, args: FinalizeArgs): string {
  const layout = layoutOf(spec);
  const a = args.audit;
  const note = a.note ? ` ${a.note.replace(/\s+/g, " ").slice(0, 300)}` : "";
  const lines = [
    // After a lost connection the deploy's last script may live on: stop it before releasing the lock.
    REAP_SCRIPT,
    "reap",
    "t0=$(date +%s%3N)",
    "phase finalize",
    ...args.deleteReleases.map((id) => `rm -rf ${shq(releaseDir(layout, id))}`),
    // Deps sets only lose their last user when a release goes.
    ...(args.deleteReleases.length
      ? [
          `for d in "$D"/deps/*/; do [ -d "$d" ] || continue; d=\${d%/}; h=\${d##*/}`,
          `  cat "$D"/releases/*/.fleet-deps 2>/dev/null | grep -qxF "$h" || rm -rf "$d"`,
          `done`,
        ]
      : []),
    `rm -rf "$D/.staging"`,
    `ms=$(( ${Math.max(0, Math.round(args.elapsedBeforeMs))} + $(date +%s%3N) - t0 ))`,
    `printf '%s %s %s -> %s %s %d.%03ds%s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" ${shq(a.who)} ${shq(a.from || "-")} ${shq(a.to)} ${shq(a.result)} $((ms / 1000)) $((ms % 1000)) ${shq(note)} >> ${shq(layout.auditLog)}`,
    `rm -rf "$D/.lock"`,
    "",
  ];
  return header(layout, spec.runAs) + lines.join("\n");
}

/** `pulumi refresh`: what is live on the host. */
export function readScript(spec: ServiceSpec): string {
  const layout = layoutOf(spec);
  const unit = shq(spec.unitName);
  return (
    header(layout, spec.runAs) +
    [
      `[ -d "$D" ] || { echo exists=0; exit 0; }`,
      `echo exists=1`,
      `cur=$(readlink "$D/current" 2>/dev/null || true); echo "current=\${cur##*/}"`,
      `[ -n "$cur" ] && [ -f "$D/$cur/REVISION" ] && echo "commit=$(cat "$D/$cur/REVISION")"`,
      `echo "active=$(systemctl is-active ${unit} 2>/dev/null || true)"`,
      `echo "health_status=$(curl -gs -o /dev/null -w '%{http_code}' --max-time 2 ${shq(spec.health.url)} || true)"`,
      `for r in "$D"/releases/*/; do [ -d "$r" ] || continue; r=\${r%/}; echo "release=\${r##*/} $(cat "$r/.fleet-activated" 2>/dev/null || echo 0) -"; done`,
      "",
    ].join("\n")
  );
}

/** `pulumi destroy`: stop and remove the unit (only if it is fleet's), then the service dir. */
export function deleteScript(spec: ServiceSpec): string {
  const layout = layoutOf(spec);
  const unitFile = shq(layout.unitFile);
  return (
    header(layout, spec.runAs) +
    [
      "phase delete",
      `if [ -d "$D/.lock" ]; then echo "a deploy holds the lock:" >&2; cat "$D/.lock/owner" >&2 || true; exit ${EXIT.locked}; fi`,
      `if [ -f ${unitFile} ] && grep -qxF ${shq(UNIT_MARKER)} ${unitFile}; then`,
      `  systemctl disable --now ${shq(spec.unitName)} 2>/dev/null || true`,
      `  rm -f ${unitFile}; systemctl daemon-reload; systemctl reset-failed ${shq(spec.unitName)} 2>/dev/null || true`,
      `fi`,
      `rm -rf "$D"`,
      "",
    ].join("\n")
  );
}
