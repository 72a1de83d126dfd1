import { ENV_KEY_PATTERN } from "../model/rules/env";
import { shq, writeFileAtomic } from "./quote";

/**
 * Pure builders for machine images (GoldenImage kind hcloud): the provision wrapper that runs the
 * user's scripts on the builder server, the generalize step before the snapshot, and the check
 * run on a throwaway server booted from the snapshot. All travel on stdin (transport.runScript).
 */

/** Where a provisioned machine records what image it was built as. */
export const IMAGE_MARKER = "/etc/fleet/image";

/** Where the provision directory is unpacked on the builder (removed when provisioning ends). */
export const PROVISION_DIR = "/var/tmp/fleet-provision";

export interface ProvisionArgs {
  /** Scripts to run, relative to the provision directory, in this order. */
  readonly run: readonly string[];
  /** Exported to every script. */
  readonly env: Readonly<Record<string, string>>;
  /** Written into IMAGE_MARKER with the hash, so a server can say what it was made from. */
  readonly imageName: string;
  readonly contentHash: string;
  /** Where the directory was unpacked. Default PROVISION_DIR. */
  readonly dir?: string;
}

/** Unpacks the provision directory (a tar.gz on stdin) on the builder; via `exec`, so sudo here. */
export function provisionUploadCommand(user: string, dir: string = PROVISION_DIR): string {
  const inner = `rm -rf ${shq(dir)} && mkdir -p -m 700 ${shq(dir)} && tar -xzf - -C ${shq(dir)}`;
  return user === "root" ? inner : `sudo -n /bin/sh -c ${shq(inner)}`;
}

/**
 * Runs the provision scripts in order, each in the provision directory (so it can use the files
 * beside it) as its own executable (its shebang counts; none means sh), with the env exported
 * and stdin closed, its output on stderr (with the phases, so a failure shows the script's last
 * lines under its name). The first failure stops the build with the script's name and exit code; each
 * success prints `ran=<name>`. Records the marker, and removes the directory on any outcome, so
 * the snapshot does not carry it.
 */
export function provisionScript(args: ProvisionArgs): string {
  const dir = args.dir ?? PROVISION_DIR;
  const lines = [
    "set -eu",
    "export DEBIAN_FRONTEND=noninteractive",
    `phase() { printf 'fleet-phase: %s\\n' "$1" >&2; }`,
    `P=${shq(dir)}; trap 'rm -rf "$P"' EXIT`,
    ...Object.keys(args.env)
      .sort()
      .map((k) => {
        if (!ENV_KEY_PATTERN.test(k)) throw new Error(`provision env: not a variable name: ${k}`);
        return `export ${k}=${shq(args.env[k]!)}`;
      }),
  ];
  for (const script of args.run) {
    if (script.split("/").includes("..") || script.startsWith("/"))
      throw new Error(`provision script ${script}: must be a path inside the provision directory`);
    lines.push(
      `phase ${shq(`provision ${script}`)}`,
      // printf, not echo: dash's echo would expand backslash escapes in the name.
      `[ -f "$P"/${shq(script)} ] || { printf '%s\\n' ${shq(`provision script ${script} is not in the provision directory`)} >&2; exit 66; }`,
      `chmod u+x "$P"/${shq(script)}`,
      // The script's output goes to stderr: stdout carries only fleet's facts.
      `rc=0; (cd "$P" && ./${shq(script)} </dev/null) >&2 || rc=$?`,
      `if [ "$rc" -ne 0 ]; then printf '%s with exit code %s\\n' ${shq(`provision script ${script} failed`)} "$rc" >&2; exit "$rc"; fi`,
      `printf '%s\\n' ${shq(`ran=${script}`)}`,
    );
  }
  lines.push(
    "phase record",
    `mkdir -p ${shq(IMAGE_MARKER.slice(0, IMAGE_MARKER.lastIndexOf("/")))}`,
    writeFileAtomic(IMAGE_MARKER, `name=${args.imageName}\nhash=${args.contentHash}\n`, "644"),
    "echo provisioned=1",
    "",
  );
  return lines.join("\n");
}

/**
 * Makes the builder's disk fit to be cloned, under `root` ("/" on a builder; a scratch directory
 * in tests): the temporary login keys leave every authorized_keys (servers made from the snapshot
 * must not trust a key that was only meant for the build), /etc/machine-id is emptied (systemd
 * makes a fresh one at first boot) and the builder's host keys go (cloud-init installs the new
 * server's own key at its first boot).
 */
export function generalizeScript(root: string, temporaryKeys: readonly string[]): string {
  const r = root.replace(/\/+$/, "");
  const blobs = temporaryKeys.map((k) => k.trim().split(/\s+/)[1] ?? "").filter((b) => b.length > 0);
  const drop = blobs.length
    ? [
        `for f in "$R"/root/.ssh/authorized_keys "$R"/home/*/.ssh/authorized_keys; do`,
        `  [ -f "$f" ] || continue`,
        `  grep -vF ${blobs.map((b) => `-e ${shq(b)}`).join(" ")} "$f" > "$f.fleet-tmp" || true`,
        `  cat "$f.fleet-tmp" > "$f"; rm -f "$f.fleet-tmp"`,
        `done`,
      ]
    : [];
  return [
    "set -eu",
    `phase() { printf 'fleet-phase: %s\\n' "$1" >&2; }`,
    "phase generalize",
    `R=${shq(r)}`,
    ...drop,
    `if [ -f "$R/etc/machine-id" ]; then : > "$R/etc/machine-id"; fi`,
    `rm -f "$R"/etc/ssh/ssh_host_*`,
    "sync",
    "echo generalized=1",
    "",
  ].join("\n");
}

/** The validation check on a server booted from the new snapshot: the user's command, plus the marker. */
export function imageCheckScript(check: string, contentHash: string): string {
  return [
    "set -eu",
    `phase() { printf 'fleet-phase: %s\\n' "$1" >&2; }`,
    "phase marker",
    `grep -qxF ${shq(`hash=${contentHash}`)} ${IMAGE_MARKER} || { echo "this server was not made from image ${contentHash.slice(0, 16)}: ${IMAGE_MARKER} says $(cat ${IMAGE_MARKER} 2>/dev/null | tr '\\n' ' ')" >&2; exit 66; }`,
    "phase check",
    check,
    "echo checked=1",
    "",
  ].join("\n");
}
