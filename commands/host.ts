import { emitBytes, shq, writeFileAtomic } from "./quote";
import type { BootstrapSpec } from "../model/host";
import { PROXY, emptyProxyConfig, proxyUnit } from "./proxy";

/** Where the host records which bootstrap script last ran (read back for drift). */
export const BOOTSTRAP_MARKER = "/var/lib/fleet/bootstrap.sha256";

/** The shell prefix that finds the nearest existing directory of a path (df needs one). */
function nearestExisting(path: string): string {
  return `p=${shq(path)}; while [ ! -e "$p" ]; do p=$(dirname "$p"); done`;
}

/**
 * Bootstraps a host, idempotently: each step checks before it acts and records what it changed
 * (`changed=<step>` lines), so a second run prints no `changed=` at all. Steps are named with
 * `fleet-phase:` so a host that drops off mid-way is reported with the step it was in.
 */
export function bootstrapScript(spec: BootstrapSpec, scriptSha: string): string {
  const user = shq(spec.deployUser);
  const keys = spec.deployUserKeys.map((k) => k.trim()).join("\n") + (spec.deployUserKeys.length ? "\n" : "");
  const journald = `[Journal]\nSystemMaxUse=${spec.journalMaxUse}\n`;
  const sudoers = `${spec.deployUser} ALL=(ALL) NOPASSWD:ALL\n`;
  const lines = [
    "set -eu",
    "export DEBIAN_FRONTEND=noninteractive LC_ALL=C",
    `phase() { printf 'fleet-phase: %s\\n' "$1" >&2; }`,
    // Writes a file only when its content differs; prints changed=<name> when it did.
    `ensure_file() { tmp=$(mktemp); cat > "$tmp"; if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else install -D -m "$2" "$tmp" "$1"; rm -f "$tmp"; echo "changed=$3"; fi; }`,
    "phase user",
    `if ! id -u ${user} >/dev/null 2>&1; then useradd -m -s /bin/bash ${user}; echo changed=user; fi`,
    `home=$(getent passwd ${user} | cut -d: -f6)`,
    `if [ ! -d "$home/.ssh" ]; then install -d -m 700 -o ${user} -g ${user} "$home/.ssh"; echo changed=ssh-dir; fi`,
  ];
  if (spec.deployUserKeys.length) {
    lines.push(
      `${emitBytes(keys)} | ensure_file "$home/.ssh/authorized_keys" 600 authorized-keys`,
      `chown ${user}: "$home/.ssh/authorized_keys"`,
    );
  }
  if (spec.sudo) {
    lines.push(
      `${emitBytes(sudoers)} | ensure_file /etc/sudoers.d/90-fleet-${spec.deployUser.replace(/[^a-z0-9_-]/g, "")} 440 sudo`,
    );
  }
  lines.push(
    "phase directories",
    `if [ ! -d ${shq(spec.root)} ]; then install -d -m 755 ${shq(spec.root)}; echo changed=root; fi`,
    "install -d -m 755 /var/lib/fleet",
    "phase packages",
    `missing=""; for p in ${spec.packages.map(shq).join(" ")}; do dpkg-query -W -f='\${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"; done`,
    `if [ -n "$missing" ]; then apt-get update -q >&2 && apt-get install -y -q --no-install-recommends $missing >&2; echo changed=packages; fi`,
    "phase journald",
    `if ${emitBytes(journald)} | ensure_file /etc/systemd/journald.conf.d/50-fleet.conf 644 journald | grep -q changed; then echo changed=journald; systemctl restart systemd-journald; fi`,
    "phase timezone",
    `[ -e /usr/share/zoneinfo/${shq(spec.timezone)} ] || { echo "unknown time zone ${spec.timezone.replace(/[^A-Za-z0-9_/+-]/g, "")} (no /usr/share/zoneinfo entry)" >&2; exit 64; }`,
    `if [ "$(readlink /etc/localtime)" != /usr/share/zoneinfo/${shq(spec.timezone)} ]; then ln -sfn /usr/share/zoneinfo/${shq(spec.timezone)} /etc/localtime; printf '%s\\n' ${shq(spec.timezone)} > /etc/timezone; echo changed=timezone; fi`,
    ...(spec.proxy ? proxyBootstrapLines() : []),
    "phase record",
    writeFileAtomic(BOOTSTRAP_MARKER, scriptSha + "\n", "644"),
    "",
  );
  return lines.join("\n");
}

/**
 * fleet's proxy: Caddy from the distribution, its own unit and config (the distribution's
 * `caddy.service`, which would take :80 with a sample site, is masked), enabled so that it and
 * the routes it last loaded come back after a reboot.
 */
function proxyBootstrapLines(): string[] {
  return [
    "phase proxy",
    `if ! command -v caddy >/dev/null 2>&1; then apt-get update -q >&2 && apt-get install -y -q --no-install-recommends caddy >&2; echo changed=caddy; fi`,
    `[ -x ${shq(PROXY.socketProxyd)} ] || { echo "${PROXY.socketProxyd} is missing: fleet's proxy needs systemd's socket proxy (systemd 230 or later)" >&2; exit 64; }`,
    `if [ "$(systemctl is-enabled caddy.service 2>/dev/null)" != masked ]; then systemctl mask --now caddy.service >/dev/null 2>&1; echo changed=caddy-masked; fi`,
    `install -d -m 755 ${shq(PROXY.etc)} ${shq(`${PROXY.etc}/servers`)} ${shq(`${PROXY.etc}/tls`)}`,
    `install -d -m 750 -o caddy -g caddy ${shq(PROXY.storage)}`,
    `[ -f ${shq(PROXY.config)} ] || { ${emitBytes(emptyProxyConfig())} > ${shq(PROXY.config)}; chmod 644 ${shq(PROXY.config)}; echo changed=proxy-config; }`,
    `if ${emitBytes(proxyUnit())} | ensure_file ${shq(PROXY.unitFile)} 644 proxy-unit | grep -q changed; then echo changed=proxy-unit; systemctl daemon-reload; systemctl enable --quiet ${PROXY.unit}; systemctl restart ${PROXY.unit}; fi`,
    `systemctl is-active --quiet ${PROXY.unit} || systemctl start ${PROXY.unit} || { systemctl status ${PROXY.unit} --no-pager -n 20 >&2; exit 70; }`,
  ];
}

/** Reads the facts fleet reports for a host; `root` is where free disk is measured. */
export function factsScript(root: string): string {
  return [
    "set -eu",
    ". /etc/os-release",
    `echo "os=$PRETTY_NAME"`,
    `echo "os_id=$ID"`,
    `echo "os_version=\${VERSION_ID:-}"`,
    `echo "arch=$(uname -m)"`,
    `echo "systemd=$(systemctl --version | head -1 | awk '{print $2}')"`,
    nearestExisting(root),
    `echo "disk_free_mb=$(df -Pm "$p" | awk 'NR==2{print $4}')"`,
    `echo "memory_mb=$(awk '/^MemTotal:/{print int($2/1024)}' /proc/meminfo)"`,
    `echo "bootstrap_sha=$(cat ${BOOTSTRAP_MARKER} 2>/dev/null || true)"`,
    "",
  ].join("\n");
}

/** A guard for deploy scripts: refuses when `path`'s file system has less than `minMb` free. */
export function diskGuard(path: string, minMb: number, exitCode: number): string {
  return [
    nearestExisting(path),
    `free_mb=$(df -Pm "$p" | awk 'NR==2{print $4}')`,
    `if [ "$free_mb" -lt ${Math.floor(minMb)} ]; then echo "only $free_mb MiB free on $p; fleet needs at least ${Math.floor(minMb)} MiB there to deploy (minFreeDisk)" >&2; exit ${exitCode}; fi`,
  ].join("\n");
}
