import { emitBytes, shq } from "./quote";
import { UNIT_MARKER, depsDir, releaseDir, serviceLayout, type ServiceLayout } from "./layout";
import type { ServiceSpec } from "../model/service";
import { diskGuard } from "./host";
import { createHash } from "crypto";
import {
  ENV_FILE_NOT_LINK,
  EXIT,
  RECORD_SCRIPT,
  SERVICE_ENV_RUN,
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
import { commitFactLine, releaseReadyTest } from "./release-marks";
import { serviceResourceId } from "../model/resource-names";

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

export function layoutOf(spec: Pick<ServiceSpec, "root" | "name" | "unitName">): ServiceLayout {
  return serviceLayout(spec.root, spec.name, spec.unitName);
}

/**
 * One `release=<id> <activated ms> <deps set>` line per retained release
 * (decisions/retention.ts parseReleaseLines), from the root-owned marks: a value the release's
 * user could have written (a marker of a release staged before the mark store) is only trusted
 * in its expected shape.
 */
const RELEASE_LINES = [
  `for r in "$D"/releases/*/; do [ -d "$r" ] || continue; r=\${r%/}; id=\${r##*/}`,
  `  a=$(mark_get "$id" activated); case $a in "" | *[!0-9]*) a=0 ;; esac`,
  `  h=$(mark_get "$id" deps); case $h in "" | *[!0-9A-Za-z_-]*) h=- ;; esac`,
  `  echo "release=$id $a $h"`,
  `done`,
].join("\n");

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

/**
 * Where the distribution, local packages and generators keep units. A unit of fleet's in
 * /etc/systemd/system overrides one of the same name there (a service called `ssh` would take
 * sshd's place), so such a name is refused.
 */
export const SYSTEM_UNIT_DIRS = [
  "/run/systemd/system",
  "/run/systemd/generator",
  "/run/systemd/generator.late",
  "/usr/local/lib/systemd/system",
  "/usr/lib/systemd/system",
  "/lib/systemd/system",
] as const;

/** The unit files a service installs in /etc/systemd/system (behind the proxy: its templates). */
function installedUnitNames(spec: ServiceSpec): string[] {
  const u = spec.unitName;
  return spec.proxy ? [`${u}@.service`, `${u}-sock@.socket`, `${u}-sock@.service`] : [`${u}.service`];
}

/** Exits EXIT.unitNotOurs when a unit the service would install shadows one the system has. */
export function systemUnitGuard(spec: ServiceSpec): string {
  const dirs = SYSTEM_UNIT_DIRS.map((d) => shq(d)).join(" ");
  const names = installedUnitNames(spec)
    .map((n) => shq(n))
    .join(" ");
  return [
    `for ud in ${dirs}; do for un in ${names}; do`,
    `  if [ -e "$ud/$un" ] || [ -L "$ud/$un" ]; then echo "the system already has a unit $un ($ud/$un); a service unit of that name in /etc/systemd/system would take its place: choose another unitName (or service name)" >&2; exit ${EXIT.unitNotOurs}; fi`,
    `done; done`,
  ].join("\n");
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
    systemUnitGuard(spec),
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
    // The folder is this resource's now: a resource it replaced (another address of the same
    // machine) must not delete it.
    `printf '%s\\n' ${shq(`id=${serviceResourceId(spec.connection, spec.name)}`)} ${shq(`unit=${spec.unitName}`)} > "$D/.owner"`,
  ];
}

/**
 * Step 1: checks the host can take this service, takes the lock, and reports what is already
 * there (current release, whether the release and its deps are present, the retained releases
 * with their activation times).
 */
export function prepareScript(spec: ServiceSpec, owner: LockOwner): string {
  const layout = layoutOf(spec);
  const deps = spec.install ? depsDir(layout, spec.install.hash) : "";
  return (
    header(layout, spec.runAs) +
    [
      ...checksAndLock(spec, owner),
      "phase inspect",
      `cur=$(readlink "$D/current" 2>/dev/null || true); echo "current=\${cur##*/}"`,
      `${releaseReadyTest(shq(spec.releaseId))} && echo release_present=1 || echo release_present=0`,
      deps
        ? `[ -f ${shq(deps + "/.fleet-complete")} ] && echo deps_present=1 || echo deps_present=0`
        : "echo deps_present=1",
      RELEASE_LINES,
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
 * The script the service's user runs to link a deps set into a release (its own tree); with
 * `relink`, the links to another deps set go first. No word splitting of the names found.
 */
export function linkDepsScript(layout: ServiceLayout, rel: string, hash: string, relink: boolean): string {
  return [
    // (find returns to where it started: root's working directory is no place of the user's)
    `set -e; cd ${shq(rel)}`,
    LINK_MISSING,
    ...(relink ? [`find ${shq(rel)} -type l -lname ${shq(`${layout.deps}/*`)} -exec rm -f {} +`] : []),
    `link_missing ${shq(depsDir(layout, hash))} ${shq(rel)}`,
  ].join("\n");
}

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
  // From root's staging (not yet the user's), root copies into a `deps/` folder that is still
  // its own, then hands it over. From a retained release (the user's tree, where a `when` file
  // may be a link to a file only root could read) the user copies.
  const copies = spec.install.when.map((file) => {
    const dir = file.includes("/") ? file.slice(0, file.lastIndexOf("/")) : "";
    return [
      dir ? `mkdir -p ${shq(`${target}/${dir}`)}` : "",
      `cp -p ${shq(`${src}/${file}`)} ${shq(`${target}/${file}`)}`,
    ]
      .filter(Boolean)
      .join(" && ");
  });
  return (
    header(layout, spec.runAs) +
    [
      "phase install",
      RECORD_SCRIPT,
      `S=${shq(src)}; T=${shq(target)}`,
      ...(fromStaging
        ? [`rm -rf "$T"; mkdir -p "$T"`, ...copies, `chown -R "$RUN_AS" "$T"`]
        : [`rm -rf "$T"; mkdir -p "$T"; chown "$RUN_AS" "$T"`, `as_user ${shq(["set -e", ...copies].join("\n"))}`]),
      `cd "$T"`,
      `as_user ${shq(spec.install.run)}`,
      `as_user ${shq(`touch ${shq(`${target}/.fleet-complete`)}`)}`,
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
  const deps = spec.install ? ` && [ -f ${shq(depsDir(layout, spec.install.hash) + "/.fleet-complete")} ]` : "";
  return (
    header(layout, spec.runAs) +
    [
      ...checksAndLock(spec, owner),
      `if ! { ${releaseReadyTest(shq(spec.releaseId))}${deps}; }; then rm -rf "$D/.lock"; echo fast=0; exit 0; fi`,
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
  const id = shq(spec.releaseId);
  const lines: string[] = [RECORD_SCRIPT, `t0=$(date +%s%3N)`, `R=${shq(rel)}`];
  if (plan.stage) {
    lines.push(
      "phase stage",
      // Staging is root's: the release is still root's own tree until the chown.
      `rm -rf "$R"; mark_drop ${id}; mv ${shq(`${layout.staging}/${spec.releaseId}`)} "$R"`,
      `rm -f "$R/REVISION"; printf '%s\\n' ${shq(spec.commit)} > "$R/REVISION"`,
      `mark_set ${id} commit ${shq(spec.commit)}; mark_set ${id} deps ${shq(spec.install?.hash ?? "-")}`,
      `chown -R "$RUN_AS" "$R"`,
    );
    if (spec.install) lines.push(`as_user ${shq(linkDepsScript(layout, rel, spec.install.hash, false))}`);
    // Shared data is linked in before the build, which may use it.
    lines.push(...sharedLinkLines(spec.shared));
    if (spec.build) {
      // A failed build removes the half-built release: it never served, so it is no evidence.
      lines.push(
        "phase build",
        `(cd "$R" && as_user ${shq(spec.build)}) || { rc=$?; rm -rf "$R"; mark_drop ${id}; exit $rc; }`,
      );
    }
  } else if (spec.install) {
    // A retained release re-activated with another dependency set (install.run changed): its
    // links are the user's tree, so the user relinks them.
    lines.push(
      "phase stage",
      `if [ "$(mark_get ${id} deps)" != ${shq(spec.install.hash)} ]; then`,
      `  as_user ${shq(linkDepsScript(layout, rel, spec.install.hash, true))}`,
      `  mark_set ${id} deps ${shq(spec.install.hash)}`,
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
      // The env file may set any variable (PATH, LD_*, the script's own D and RUN_AS): only the
      // migration's shell reads it (service_env_run); the file (secrets) goes before it runs.
      SERVICE_ENV_RUN,
      `migrate_as() { ${ENV_FILE_NOT_LINK}; { command -p rm -f "$1"; service_env_run "$2" "$4"; } 3<"$1"; }`,
      `(cd "$R" && migrate_as "$D/.migrate-env" "$RUN_AS" "$(id -un)" ${shq(spec.migrate)}) || { rc=$?; rm -f "$D/.migrate-env"; exit $rc; }`,
      `echo migrated=1; : > "$D/.lock/migrated"`,
    );
  }
  // Staged, built and migrated to the end: from here on the release may be re-activated as it is.
  if (plan.stage) lines.push(`mark_set ${id} staged 1`);
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
    `mark_set ${id} activated "$(date +%s%3N)"`,
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
    `if [ -n "$prev" ]; then ${commitFactLine("previous_commit", '"${prev##*/}"')}; fi`,
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
export function rollbackScript(spec: ServiceSpec, token: string, options: { unstage?: boolean } = {}): string {
  const layout = layoutOf(spec);
  return (
    header(layout, spec.runAs) +
    [
      "phase rollback",
      // Another deploy took the lock over (this one's connection had dropped): the host is its now.
      lockLostLine(layout, token),
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
    lockLostLine(layout, args.token),
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
    ...args.deleteReleases.map((id) => `rm -rf ${shq(releaseDir(layout, id))}; mark_drop ${shq(id)}`),
    // Deps sets only lose their last user when a release goes.
    ...(args.deleteReleases.length
      ? [
          `used=$(for r in "$D"/releases/*/; do [ -d "$r" ] || continue; r=\${r%/}; mark_get "\${r##*/}" deps; done)`,
          `for d in "$D"/deps/*/; do [ -d "$d" ] || continue; d=\${d%/}; h=\${d##*/}`,
          `  printf '%s\\n' "$used" | grep -qxF "$h" || rm -rf "$d"`,
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

/**
 * Exits EXIT.lockLost (printing `lock_lost=1` and deploy.log's last line) unless the lock is
 * still this deploy's: every step after the lock that changes the host starts with it.
 */
export function lockLostLine(layout: ServiceLayout, token: string): string {
  return `if ! ${lockIs(token)}; then echo lock_lost=1; echo "last=$(tail -n 1 ${shq(layout.auditLog)} 2>/dev/null)"; exit ${EXIT.lockLost}; fi`;
}

/** Stops the service for a database restore, only while the lock is still this deploy's. */
export function stopForRestoreScript(spec: ServiceSpec, token: string): string {
  const layout = layoutOf(spec);
  // Behind the proxy, every instance stops (the rollback starts the old one again).
  const units = spec.proxy ? `${spec.unitName}@*.service` : spec.unitName;
  return header(layout, spec.runAs) + [lockLostLine(layout, token), `systemctl stop ${shq(units)}`, ""].join("\n");
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
      `if [ -n "$cur" ]; then ${commitFactLine("commit", '"${cur##*/}"')}; fi`,
      // The last release a confirmed gate passed: what a refresh reports as deployed.
      `v=$(cat "$D/verified" 2>/dev/null || true); echo "verified=$v"`,
      `if [ -n "$v" ] && [ -d "$D/releases/$v" ]; then ${commitFactLine("verified_commit", '"$v"')}; fi`,
      ...(spec.proxy
        ? proxyReadLines(spec, layout)
        : [
            `echo "active=$(systemctl is-active ${unit} 2>/dev/null || true)"`,
            `echo "health_status=$(curl -gs -o /dev/null -w '%{http_code}' --max-time 2 ${shq(spec.health.url)} || true)"`,
          ]),
      RELEASE_LINES,
      "",
    ].join("\n")
  );
}

/**
 * A replacement created on the same machine under another address (a name and its IP) owns the
 * folder now (`.owner`): the replaced resource's delete removes only its own unit, when that is
 * another one, and leaves folder, unit and proxy routes to their owner.
 */
function supersededLines(spec: ServiceSpec, layout: ServiceLayout): string[] {
  const unitFile = shq(layout.unitFile);
  const own = shq(serviceResourceId(spec.connection, spec.name));
  return [
    `owner=$(sed -n 's/^id=//p' "$D/.owner" 2>/dev/null || true)`,
    `if [ -n "$owner" ] && [ "$owner" != ${own} ]; then`,
    `  echo "superseded_by=$owner"`,
    `  if [ "$(sed -n 's/^unit=//p' "$D/.owner")" != ${shq(spec.unitName)} ] && [ -f ${unitFile} ] && grep -qxF ${shq(UNIT_MARKER)} ${unitFile}; then`,
    `    systemctl disable --now ${shq(spec.unitName)} 2>/dev/null || true; rm -f ${unitFile}; systemctl daemon-reload`,
    `  fi`,
    `  exit 0`,
    `fi`,
  ];
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
      ...supersededLines(spec, layout),
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
