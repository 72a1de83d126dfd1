/**
 * The host-side scripts of `npm run reboot` (issue 20): the boot identity, the reboot itself, one
 * service's health probe after a boot, and the deploy locks the reboot holds meanwhile. Pure
 * builders; quoting via commands/quote.ts.
 */
import { emitBytes, shq, systemdExecArg, writeFileAtomic } from "./quote";
import { serviceLayout } from "./layout";
import { proxyLayout } from "./proxy";
import { renderLockOwner, type LockOwner } from "./service";
import { instanceProbeTarget } from "./service-proxy";
import { EXIT, probeLines } from "./service-shell";
import { PRESENCE_GONE } from "./watchdog";
import type { HealthSpec } from "../model/service";
import { MARK_FUNCTIONS, commitFactLine } from "./release-marks";

/**
 * Prints `boot=<kernel boot id> <PID 1's start time>` (decisions/reboot.ts BootIdentity: a
 * container shares its host's kernel boot id, its PID 1 is new on each of its boots).
 */
export const BOOT_LINE = `echo "boot=$(cat /proc/sys/kernel/random/boot_id) $(cut -d' ' -f22 /proc/1/stat)"`;

export function bootScript(): string {
  return `${BOOT_LINE}\n`;
}

/**
 * Prints the boot identity, then reboots a second later, from systemd (a transient timer), not
 * from this session: the command returns and its channel closes before sshd goes down, so the
 * session closing under it is no error. Without systemd-run, a detached shell does the same.
 */
export function rebootScript(hold?: BootHold): string {
  return [
    "set -eu",
    BOOT_LINE,
    ...(hold ? bootHoldInstallLines(hold) : []),
    `if command -v systemd-run >/dev/null 2>&1; then`,
    `  systemd-run --quiet --on-active=1 --timer-property=AccuracySec=100ms /bin/systemctl reboot`,
    `else`,
    `  nohup /bin/sh -c 'sleep 1; systemctl reboot' </dev/null >/dev/null 2>&1 &`,
    `fi`,
    `echo scheduled=1`,
    "",
  ].join("\n");
}

/** One service on one host, as the probe after a boot needs it. */
export interface RebootHealthTarget {
  readonly root: string;
  readonly service: string;
  readonly unitName: string;
  readonly health: HealthSpec;
  /** Behind the proxy: the serving instance (its port) is probed, as the deploy's gate does. */
  readonly proxied: boolean;
}

/** The health spec one probe polls with (and is judged by): its deadline `timeoutMs`. */
export function probedHealth(health: HealthSpec, timeoutMs: number): HealthSpec {
  return { ...health, timeoutMs: Math.max(0, Math.floor(timeoutMs)) };
}

/**
 * The deploy's health probe (commands/service-shell.ts probeLines) run once against the serving
 * release, polling for at most `timeoutMs`; prints its facts plus `commit=` (the serving
 * release's commit from fleet's marks, for a version check). The probe watches a started process (`$pid`): after
 * a boot the unit may not have started yet, so it watches this shell instead, and polls until
 * healthy or the deadline rather than calling a unit that is still starting "exited".
 */
export function rebootHealthScript(t: RebootHealthTarget, timeoutMs: number): string {
  const layout = serviceLayout(t.root, t.service, t.unitName);
  const D = shq(layout.dir);
  const spec = { unitName: t.unitName, health: probedHealth(t.health, timeoutMs) };
  return [
    `phase() { :; }`,
    `started=$(date +%s); pid=$$; echo restarts=0`,
    `cur=$(readlink ${D}/current 2>/dev/null || true)`,
    `D=${D}`,
    MARK_FUNCTIONS,
    `if [ -n "$cur" ]; then ${commitFactLine("commit", '"${cur##*/}"')}; fi`,
    ...(t.proxied
      ? [
          `sp=$(cat ${shq(proxyLayout(layout.dir).servingFile)} 2>/dev/null || true)`,
          ...probeLines(spec, instanceProbeTarget(spec, "$sp")),
        ]
      : probeLines(spec)),
    "",
  ].join("\n");
}

/*
 * The deploy locks the reboot holds (security review: a deploy that started after the reboot's
 * check could be rebooted halfway). Every service's `<root>/<service>/.lock` on the host, the
 * lock a deploy takes (commands/service.ts checksAndLock), is held from before the reboot until
 * the host is back and its services' health ran: a deploy that finds it is refused
 * (EXIT.locked) naming the reboot. The owner file is a deploy's (who, machine, pid, since,
 * release, token, presence) with `release=reboot` and a `kind=reboot` line. Its presence is the
 * reboot's process on the host (transport/ssh.ts presence), so a deploy takes over the lock of a
 * reboot that died (commands/watchdog.ts holder_gone), and so does the next reboot. The reboot
 * itself ends that process: through the boot, a unit that starts before sshd (the boot hold)
 * stands for it, until the reboot, connected again, names its new presence.
 */

/** The line that tells a reboot's lock from a deploy's. */
export const REBOOT_LOCK_KIND = "kind=reboot";

/** One service's deploy lock on a host. */
export type RebootLockTarget = Pick<RebootHealthTarget, "root" | "service" | "unitName">;

/** Where the boot hold lives on the host (elsewhere in tests). */
export interface BootHoldPaths {
  /** Its program. */
  readonly program: string;
  /** Its unit file. */
  readonly unit: string;
  /** The link that starts it on the next boot (the program removes it: one boot only). */
  readonly wants: string;
}

export const BOOT_HOLD_UNIT = "fleet-reboot-hold.service";

export const BOOT_HOLD_PATHS: BootHoldPaths = {
  program: "/etc/fleet/reboot-hold.sh",
  unit: `/etc/systemd/system/${BOOT_HOLD_UNIT}`,
  wants: `/etc/systemd/system/multi-user.target.wants/${BOOT_HOLD_UNIT}`,
};

/** The reboot's locks on one host, held through its boot. */
export interface BootHold {
  readonly targets: readonly RebootLockTarget[];
  /** The reboot's lock token (its owner file's `token=`). */
  readonly token: string;
  /** How long the hold lasts at most after the boot: the reboot's --wait. */
  readonly waitMs: number;
  readonly paths?: BootHoldPaths;
}

/** The owner file of the reboot's locks. */
export function rebootLockOwnerText(owner: LockOwner): string {
  return `${renderLockOwner(owner)}${REBOOT_LOCK_KIND}\n`;
}

const serviceDir = (t: RebootLockTarget) => shq(serviceLayout(t.root, t.service, t.unitName).dir);

/**
 * `owner_wait <dir>`: a holder writes its owner file just after its mkdir; a deploy waits for it
 * (up to 1 s) so that a refusal names the holder, and so does the reboot. `holder <dir>`: the
 * owner file on one line, base64. `gone_reboot <dir>`: exit 0 when the lock is a reboot's whose
 * presence no longer runs (holder_gone's test, for reboots' locks only).
 */
const HELD_FUNCTIONS = [
  `owner_wait() { i=0; while [ ! -s "$1/.lock/owner" ] && [ -d "$1/.lock" ] && [ $i -lt 20 ]; do sleep 0.05; i=$((i + 1)); done; }`,
  `holder() { tr '\\n' ' ' < "$1/.lock/owner" 2>/dev/null | base64 -w0 || true; }`,
  PRESENCE_GONE,
  `gone_reboot() { grep -qxF ${shq(REBOOT_LOCK_KIND)} "$1/.lock/owner" 2>/dev/null && presence_gone "$1/.lock"; }`,
].join("\n");

/** `mine <dir>`: exit 0 while the lock in `<dir>` is this reboot's (its token). */
function mineFunction(token: string): string {
  return `mine() { [ "$(sed -n 's/^token=//p' "$1/.lock/owner" 2>/dev/null)" = ${shq(token)} ]; }`;
}

/** `unlock <dir>`: removes the reboot's lock (only its own), and the service dir it made, if still empty. */
const UNLOCK_FUNCTION = [
  `unlock() {`,
  `  mine "$1" || return 0`,
  `  if [ -e "$1/.lock/made-dir" ]; then rm -rf "$1/.lock"; rmdir "$1" 2>/dev/null || true; else rm -rf "$1/.lock"; fi`,
  `}`,
].join("\n");

/** `repoint <dir>`: the lock's owner file names the presence `$P` (replaced whole, by rename). */
const REPOINT_FUNCTION = `repoint() { { grep -v '^presence=' "$1/.lock/owner"; echo "presence=$P"; } > "$1/.lock/owner.tmp" && mv -f "$1/.lock/owner.tmp" "$1/.lock/owner"; }`;

/**
 * Reads the host's deploy locks before anything is rebooted: `held=<service> <holder, base64>`
 * for each lock a deploy (or a running reboot) holds. A gone reboot's lock is not in the way:
 * the reboot takes it over.
 */
export function rebootLocksReadScript(targets: readonly RebootLockTarget[]): string {
  return [
    "set -u",
    HELD_FUNCTIONS,
    ...targets.map((t) => {
      const d = serviceDir(t);
      return `if [ -d ${d}/.lock ]; then owner_wait ${d}; gone_reboot ${d} || echo held=${shq(t.service)}" $(holder ${d})"; fi`;
    }),
    "",
  ].join("\n");
}

/**
 * Takes every service's deploy lock on the host for the reboot, all or none: `took=<service>` for
 * each (`took_over=<service>` too when a gone reboot held it). A lock someone else holds prints
 * `held=<service>` and `held_by=<holder, base64>`, releases those taken, and exits EXIT.locked;
 * any other failure releases them and exits 1. A service not deployed here gets its dir made, so
 * that a first deploy waits too; its release removes that dir again if it is still empty.
 */
export function rebootLockScript(targets: readonly RebootLockTarget[], owner: LockOwner): string {
  const dirs = targets.map(serviceDir);
  return [
    "set -eu",
    "umask 022",
    HELD_FUNCTIONS,
    mineFunction(owner.token),
    UNLOCK_FUNCTION,
    // take <dir> <service>: 0 taken, 1 held by someone else, 2 could not.
    `take() {`,
    `  made=0; [ -d "$1" ] || { mkdir -p "$1" || return 2; made=1; }`,
    `  if ! mkdir "$1/.lock" 2>/dev/null; then`,
    `    if [ -d "$1/.lock" ]; then`,
    `      owner_wait "$1"; gone_reboot "$1" || return 1`,
    `      [ ! -e "$1/.lock/made-dir" ] || made=1`,
    `      echo "took_over=$2"; rm -rf "$1/.lock"`,
    `    fi`,
    `    mkdir "$1/.lock" 2>/dev/null || { [ -d "$1/.lock" ] && return 1; return 2; }`,
    `  fi`,
    `  { ${emitBytes(rebootLockOwnerText(owner))} > "$1/.lock/owner" && { [ "$made" = 0 ] || : > "$1/.lock/made-dir"; }; } || { rm -rf "$1/.lock"; return 2; }`,
    `}`,
    // undo <n>: releases the first n locks taken.
    `undo() {`,
    ...dirs.map((d, i) => `  [ "$1" -lt ${i + 1} ] || unlock ${d}`),
    `  :`,
    `}`,
    // failed <status> <dir> <service> <index>
    `failed() {`,
    `  [ "$1" != 1 ] || { echo "held=$3"; echo "held_by=$(holder "$2")"; }`,
    `  undo "$4"`,
    `  [ "$1" != 1 ] || exit ${EXIT.locked}`,
    `  echo "could not take the deploy lock in $2" >&2; exit 1`,
    `}`,
    ...targets.map(
      (t, i) =>
        `if take ${dirs[i]} ${shq(t.service)}; then echo took=${shq(t.service)}; else failed $? ${dirs[i]} ${shq(t.service)} ${i}; fi`,
    ),
    "",
  ].join("\n");
}

/**
 * The boot hold's program (after a `deadline=<epoch s>` line the install puts first: the end of
 * the reboot's wait on the host's clock). Before sshd, while the reboot still waits, it names
 * itself (a `sleep` until that deadline, at most the wait) in the reboot's locks. Once the wait is
 * over the reboot has given up on this host (and said so): its locks go, and the hold with them.
 */
export function bootHoldProgram(hold: BootHold): string {
  const p = hold.paths ?? BOOT_HOLD_PATHS;
  const seconds = Math.max(1, Math.ceil(hold.waitMs / 1000));
  const dirs = hold.targets.map((t) => [serviceDir(t), shq(t.service)] as const);
  return [
    `# fleet (npm run reboot): holds the reboot's deploy locks through this boot, until its wait is over.`,
    "set -u",
    "umask 022",
    `rm -f ${shq(p.wants)}`,
    mineFunction(hold.token),
    UNLOCK_FUNCTION,
    REPOINT_FUNCTION,
    // A clock set back at boot (no RTC) only makes the hold longer: never longer than the wait.
    `left=$((deadline - $(date +%s))); [ "$left" -le ${seconds} ] || left=${seconds}`,
    `if [ "$left" -le 0 ]; then`,
    ...dirs.map(([d, s]) => `  if mine ${d}; then unlock ${d}; echo released=${s}; fi`),
    `  rm -f ${shq(p.unit)} ${shq(p.program)}`,
    `  exit 0`,
    `fi`,
    `sleep "$left" </dev/null >/dev/null 2>&1 &`,
    `P="$! $(cut -d' ' -f22 /proc/$!/stat)"`,
    ...dirs.map(([d]) => `if mine ${d}; then repoint ${d}; fi`),
    `echo "presence=$P"`,
    "",
  ].join("\n");
}

/**
 * The boot hold's unit: started before sshd (and its socket) on the next boot, so no deploy can
 * connect while the locks still name the presence the reboot ended. Forking: the units after it
 * wait until its program has exited, its `sleep` standing for the reboot. It only orders: if it
 * fails, sshd starts all the same.
 */
export function bootHoldUnit(paths: BootHoldPaths = BOOT_HOLD_PATHS): string {
  return [
    "[Unit]",
    "Description=fleet: npm run reboot holds its deploy locks through this boot",
    "DefaultDependencies=no",
    "After=local-fs.target",
    "Before=ssh.service sshd.service ssh.socket sshd.socket",
    "",
    "[Service]",
    "Type=forking",
    `ExecStart=/bin/sh ${systemdExecArg(paths.program)}`,
    "TimeoutStartSec=30",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/** The reboot script's lines that install the boot hold (systemd hosts only: `hold=1`). */
function bootHoldInstallLines(hold: BootHold): string[] {
  const p = hold.paths ?? BOOT_HOLD_PATHS;
  return [
    `if [ -d /run/systemd/system ]; then`,
    `  mkdir -p "$(dirname ${shq(p.program)})" "$(dirname ${shq(p.wants)})"`,
    `  deadline=$(( $(date +%s) + ${Math.max(1, Math.ceil(hold.waitMs / 1000))} ))`,
    `  (umask 077 && { echo "deadline=$deadline"; ${emitBytes(bootHoldProgram(hold))}; } > ${shq(`${p.program}.fleet-tmp`)}) && chmod 0755 ${shq(`${p.program}.fleet-tmp`)} && mv -f ${shq(`${p.program}.fleet-tmp`)} ${shq(p.program)}`,
    `  ${writeFileAtomic(p.unit, bootHoldUnit(p), "0644")}`,
    `  ln -sfn ${shq(p.unit)} ${shq(p.wants)}`,
    `  echo hold=1`,
    `fi`,
  ];
}

/** Ends the boot hold and removes it. */
function bootHoldStopLines(paths: BootHoldPaths): string[] {
  return [
    `systemctl stop ${BOOT_HOLD_UNIT} 2>/dev/null || true`,
    `rm -f ${shq(paths.wants)} ${shq(paths.unit)} ${shq(paths.program)}`,
  ];
}

/**
 * Once the host is back: the reboot's locks name its presence on the new boot (`presence`, over
 * its new connection) instead of the hold's, and the hold ends. `kept=<service>` for each lock
 * still the reboot's, `lost=<service>` for one that is not. Without a presence the hold stays
 * (it ends with the release, or by itself after the wait).
 */
export function rebootRelockScript(hold: BootHold, presence: string | undefined): string {
  const p = hold.paths ?? BOOT_HOLD_PATHS;
  return [
    "set -u",
    "umask 022",
    ...(presence ? [`P=${shq(presence)}`] : []),
    mineFunction(hold.token),
    REPOINT_FUNCTION,
    ...hold.targets.map((t) => {
      const d = serviceDir(t);
      const s = shq(t.service);
      return presence
        ? `if mine ${d} && repoint ${d}; then echo kept=${s}; else echo lost=${s}; fi`
        : `if mine ${d}; then echo kept=${s}; else echo lost=${s}; fi`;
    }),
    ...(presence ? bootHoldStopLines(p) : []),
    "",
  ].join("\n");
}

/** Releases the reboot's locks (only its own: `released=<service>`) and ends the boot hold. */
export function rebootUnlockScript(hold: Pick<BootHold, "targets" | "token" | "paths">): string {
  return [
    "set -u",
    mineFunction(hold.token),
    UNLOCK_FUNCTION,
    ...hold.targets.map(
      (t) => `if mine ${serviceDir(t)}; then unlock ${serviceDir(t)}; echo released=${shq(t.service)}; fi`,
    ),
    ...bootHoldStopLines(hold.paths ?? BOOT_HOLD_PATHS),
    "",
  ].join("\n");
}
