import { emitBytes, shq } from "./quote";
import { UNIT_MARKER, depsDir, releaseDir, serviceLayout, type ServiceLayout } from "./layout";
import type { ServiceSpec } from "../model/service";
import { diskGuard } from "./host";
import { createHash } from "crypto";
import {
  EXIT,
  RECORD_SCRIPT,
  REAP_SCRIPT,
  auditLine,
  header,
  lockIs,
  noteWord,
  probeLines,
  restartLines,
  type AuditResult,
} from "./service-shell";
import { restoreLines } from "./restore";
import { proxyActivateLines, proxyDeleteLines, proxyDrainLines, proxyReadLines } from "./service-proxy";
import { decideLines, startWatchdogLines, takeoverFunctions, watchdogUnit } from "./watchdog";
import { removeServiceDirLines, sharedLinkLines } from "./service-shared";
import { preSwitchLines } from "./service-hooks";

export { EXIT, watchdogUnit };

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * Pure builders for every remote step of a service deploy. Each returns a POSIX sh script that
 * travels on stdin (transport.runScript), so values in it never show in `ps`. Every value is
 * quoted through commands/quote.ts. Scripts report facts as `key=value` lines on stdout and name
 * their phase on stderr (`fleet-phase: build`) so a failure says which part failed.
 */

/**
 * A release that can be activated as it is: staged, built and migrated to the end (`.fleet-staged`),
 * or activated before (`.fleet-activated`, which releases staged before that marker existed have).
 * A release dir without either is what an interrupted deploy left half-built: it is staged again.
 */
function releaseReady(rel: string): string {
  return `{ [ -f ${shq(rel + "/.fleet-staged")} ] || [ -f ${shq(rel + "/.fleet-activated")} ]; }`;
}

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
  /**
   * `<pid> <start time>` of the deployer's presence on the host (transport/presence.ts): a
   * process that ends with its SSH connection. Gone means the holder is gone.
   */
  readonly presence?: string;
}

export function renderLockOwner(owner: LockOwner): string {
  const presence = owner.presence ? `presence=${owner.presence}\n` : "";
  return `who=${owner.who}\nmachine=${owner.machine}\npid=${owner.pid}\nsince=${owner.since}\nrelease=${owner.release}\ntoken=${owner.token}\n${presence}`;
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
    REAP_SCRIPT,
    takeoverFunctions(spec, layout),
    // The holder writes its owner file just after its mkdir: a deploy refused in that instant
    // waits for it (up to 1 s), so that the refusal names who holds the lock.
    `refuse() { echo locked=1; i=0; while [ ! -s "$D/.lock/owner" ] && [ -d "$D/.lock" ] && [ $i -lt 20 ]; do sleep 0.05; i=$((i + 1)); done; cat "$D/.lock/owner" 2>/dev/null || true; exit ${EXIT.locked}; }`,
    // A holder that is provably gone (its presence ended with its connection) is taken over.
    `if ! mkdir "$D/.lock" 2>/dev/null; then`,
    `  i=0; while [ ! -s "$D/.lock/owner" ] && [ -d "$D/.lock" ] && [ $i -lt 20 ]; do sleep 0.05; i=$((i + 1)); done`,
    `  if holder_gone; then take_over ${shq(owner.who)}; mkdir "$D/.lock" 2>/dev/null || refuse; else refuse; fi`,
    `fi`,
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
  /** This deploy's lock token: the host's watchdog acts only while the lock is still this deploy's. */
  readonly token: string;
  /** From the switch on, how long the host waits for the deploying side's decision before reverting. */
  readonly watchdogDeadlineMs: number;
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
    // Shared data is linked in before the build, which may use it.
    lines.push(...sharedLinkLines(spec.shared));
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
  // A retained release has its links; a path shared since it was staged gets one now.
  if (!plan.stage) lines.push(...sharedLinkLines(spec.shared));
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
      `echo migrated=1; : > "$D/.lock/migrated"`,
    );
  }
  // Staged, built and migrated to the end: from here on the release may be re-activated as it is.
  if (plan.stage) lines.push(`: > "$R/.fleet-staged"`);
  lines.push(...preSwitchLines(spec, plan.envFile));
  if (spec.proxy) {
    const watchdog = startWatchdogLines(spec, layout, plan.token, plan.watchdogDeadlineMs, EXIT.noWatchdog);
    return [...lines, ...proxyActivateLines(spec, layout, plan, watchdog)];
  }
  lines.push(
    "phase switch",
    `rm -rf "$D/.rollback"; mkdir -m 700 "$D/.rollback"`,
    `prev=$(readlink "$D/current" 2>/dev/null || true)`,
    `if [ -n "$prev" ]; then printf '%s' "$prev" > "$D/.rollback/current"; fi`,
    `if [ -f ${shq(layout.unitFile)} ]; then cp -p ${shq(layout.unitFile)} "$D/.rollback/unit"; fi`,
    `if [ -f ${shq(layout.envFile)} ]; then cp -p ${shq(layout.envFile)} "$D/.rollback/env"; fi`,
    // Everything the rollback needs is saved: only now may the switch change anything, and only
    // under the host's watchdog, which reverts it if nobody decides in time.
    `: > "$D/.rollback/saved"`,
    ...startWatchdogLines(spec, layout, plan.token, plan.watchdogDeadlineMs, EXIT.noWatchdog),
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
 * The deploying side's rollback (its gate failed, or a step after the switch did): decides the
 * activation (stopping the host's watchdog), then puts back what `activateScript` saved:
 * `current`, the unit and the env file, restarts the previous release and probes its health.
 * After a first deploy (nothing to go back to) it stops the unit and removes it, so a broken
 * release is not left crash-looping. A no-op when nothing was switched. When the watchdog had
 * already reverted (this side came too late), it prints the watchdog's outcome and `by_host=1`,
 * and exits EXIT.reverted.
 */
export function rollbackScript(spec: ServiceSpec, options: { unstage?: boolean } = {}): string {
  const layout = layoutOf(spec);
  return (
    header(layout, spec.runAs) +
    [
      "phase rollback",
      // What is left of the activation (its connection died) must not act after the rollback.
      REAP_SCRIPT,
      "reap",
      ...decideLines(spec, layout, spec.health.timeoutMs + 60_000, EXIT.reverted),
      // Not saved: the switch stopped before changing anything, so there is nothing to undo.
      `[ -f "$D/.rollback/saved" ] || { echo restored=none; exit 0; }`,
      ...restoreLines(spec, layout, { probe: true, ...(options.unstage ? { unstage: true } : {}) }),
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
  readonly result: Extract<AuditResult, "ok" | "failed" | "rolled-back" | "critical">;
  readonly note?: string;
}

export interface FinalizeArgs {
  /** Releases to delete (decided by decisions/retention.ts). */
  readonly deleteReleases: readonly string[];
  readonly audit: AuditEntry;
  /** Time the deploy spent before this script, in ms; the script adds its own. */
  readonly elapsedBeforeMs: number;
  /** This deploy's lock token: a lock that is no longer this deploy's is left alone (EXIT.lockLost). */
  readonly token: string;
}

/**
 * The last step of every deploy, run once its outcome is decided (the gate judged on the
 * deploying side, or a step failed): prune releases and the deps sets no remaining release uses,
 * drop staging, append the audit line (with the duration), release the lock. `.rollback/` stays
 * until the next switch, so the deploying side can still put the previous release back.
 * It is the deploying side's decision: it stops the host's watchdog, and an `ok` moves
 * `verified` to the release. A lock that is no longer this deploy's (the watchdog reverted and
 * released it, or a takeover) is left alone: EXIT.lockLost, with the last deploy.log line.
 */
export function finalizeScript(spec: ServiceSpec, args: FinalizeArgs): string {
  const layout = layoutOf(spec);
  const a = args.audit;
  const lines = [
    `if ! ${lockIs(args.token)}; then echo lock_lost=1; echo "last=$(tail -n 1 ${shq(layout.auditLog)} 2>/dev/null)"; exit ${EXIT.lockLost}; fi`,
    // After a lost connection the deploy's last script may live on: stop it before releasing the lock.
    REAP_SCRIPT,
    "reap",
    ...decideLines(spec, layout, spec.health.timeoutMs + 60_000, EXIT.reverted),
    "t0=$(date +%s%3N)",
    ...(spec.proxy && a.result === "ok" ? proxyDrainLines(spec, layout) : []),
    "phase finalize",
    ...(a.result === "ok"
      ? [`printf '%s\\n' ${shq(a.to)} > "$D/.verified.tmp" && mv -f "$D/.verified.tmp" "$D/verified"`]
      : []),
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
    auditLine(layout, {
      who: shq(a.who),
      from: shq(a.from || "-"),
      to: shq(a.to),
      result: shq(a.result),
      note: noteWord(a.note),
    }),
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
      // The last release a confirmed gate passed: what a refresh reports as deployed.
      `v=$(cat "$D/verified" 2>/dev/null || true); echo "verified=$v"`,
      `[ -n "$v" ] && [ -f "$D/releases/$v/REVISION" ] && echo "verified_commit=$(cat "$D/releases/$v/REVISION")"`,
      ...(spec.proxy
        ? proxyReadLines(spec, layout)
        : [
            `echo "active=$(systemctl is-active ${unit} 2>/dev/null || true)"`,
            `echo "health_status=$(curl -gs -o /dev/null -w '%{http_code}' --max-time 2 ${shq(spec.health.url)} || true)"`,
          ]),
      `for r in "$D"/releases/*/; do [ -d "$r" ] || continue; r=\${r%/}; echo "release=\${r##*/} $(cat "$r/.fleet-activated" 2>/dev/null || echo 0) -"; done`,
      "",
    ].join("\n")
  );
}

/**
 * `pulumi destroy`: stop and remove the unit (only if it is fleet's), then the service dir. A
 * lock whose holder is provably gone is taken over first (its watchdog stopped); a live one is
 * refused, naming its holder.
 */
export function deleteScript(spec: ServiceSpec, who = "delete"): string {
  const layout = layoutOf(spec);
  const unitFile = shq(layout.unitFile);
  return (
    header(layout, spec.runAs) +
    [
      "phase delete",
      REAP_SCRIPT,
      takeoverFunctions(spec, layout),
      `if [ -d "$D/.lock" ] && holder_gone; then take_over ${shq(who)} >/dev/null; fi`,
      `if [ -d "$D/.lock" ]; then echo "a deploy holds the lock:" >&2; cat "$D/.lock/owner" >&2 || true; exit ${EXIT.locked}; fi`,
      `systemctl stop ${shq(watchdogUnit(spec))} 2>/dev/null || true`,
      ...(spec.proxy ? proxyDeleteLines(spec, layout) : []),
      `if [ -f ${unitFile} ] && grep -qxF ${shq(UNIT_MARKER)} ${unitFile}; then`,
      `  systemctl disable --now ${shq(spec.unitName)} 2>/dev/null || true`,
      `  rm -f ${unitFile}; systemctl daemon-reload; systemctl reset-failed ${shq(spec.unitName)} 2>/dev/null || true`,
      `fi`,
      ...removeServiceDirLines(spec.deleteSharedOnDestroy === true),
      "",
    ].join("\n")
  );
}
