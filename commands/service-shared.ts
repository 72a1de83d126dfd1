/**
 * `shared:` on a service (issue 20): files and directories in `<root>/<service>/shared/` that
 * outlive releases, linked into each release at the same path (Capistrano's linked_dirs and
 * linked_files). Pure builders of the host-side lines; the activation runs them as root, with
 * `$D` (the service dir), `$R` (the release), `$RUN_AS` and `as_user` set (commands/service.ts).
 * Root creates the entries in `shared/` (root's folder; each entry is a leaf the user owns), and
 * the user links them into the release, its own tree (docs/security.md).
 */
import type { SharedSpec } from "../model/service";
import { emitBytes, shq } from "./quote";

/** What fleet itself keeps in `shared/`: never kept by a delete, never a shared path (model/rules/shared.ts). */
const FLEET_OWN = ["env", "instances"];

/**
 * `share_link <path>`: `$R/<path>` becomes a link to `$D/shared/<path>` (idempotent). What the
 * release had there (a placeholder from the repo) is removed first, so no parent on the way may
 * be a link: `rm -rf` through it would reach outside the release. Run as the service's user.
 */
const SHARE_LINK = [
  `set -e; D=$1; R=$2`,
  `share_link() {`,
  `  t="$D/shared/$1"; l="$R/$1"`,
  `  [ -L "$l" ] && [ "$(readlink "$l")" = "$t" ] && return 0`,
  `  p="$R"; rest="$1"`,
  `  while [ "\${rest#*/}" != "$rest" ]; do`,
  `    p="$p/\${rest%%/*}"; rest=\${rest#*/}`,
  `    if [ -L "$p" ]; then echo "shared path $1: \${p#"$R"/} is a link in the release; a shared path must be inside the release itself" >&2; exit 1; fi`,
  `  done`,
  `  mkdir -p "\${l%/*}"; rm -rf "$l"; ln -s "$t" "$l"`,
  `}`,
].join("\n");

/**
 * Creates what is missing in `shared/` (a directory empty, a file with its initial content,
 * owned by the service's user) and links every entry into `$R`. What exists is never rewritten:
 * it is the service's data. An entry of the other kind (a file where a directory is configured)
 * fails the step, before anything switched.
 */
export function sharedLinkLines(shared: SharedSpec | undefined): string[] {
  if (!shared || (shared.dirs.length === 0 && Object.keys(shared.files).length === 0)) return [];
  const lines = ["phase shared"];
  const links: string[] = [];
  for (const dir of shared.dirs) {
    const s = `"$D/shared/"${shq(dir)}`;
    lines.push(
      `if [ -e ${s} ] && [ ! -d ${s} ]; then echo ${shq(`shared/${dir} exists and is not a directory (shared.dirs): move it away or share it as a file`)} >&2; exit 1; fi`,
      `if [ ! -d ${s} ]; then mkdir -p ${s}; chown "$RUN_AS" ${s}; fi`,
    );
    links.push(`share_link ${shq(dir)}`);
  }
  for (const [file, content] of Object.entries(shared.files)) {
    const s = `"$D/shared/"${shq(file)}`;
    lines.push(
      `if [ -d ${s} ]; then echo ${shq(`shared/${file} is a directory (shared.files): move it away or share it as a directory`)} >&2; exit 1; fi`,
      `if [ ! -e ${s} ]; then mkdir -p "$(dirname ${s})"; ${emitBytes(content)} > ${s}.fleet-tmp && chown "$RUN_AS" ${s}.fleet-tmp && mv -f ${s}.fleet-tmp ${s}; fi`,
    );
    links.push(`share_link ${shq(file)}`);
  }
  lines.push(`as_user ${shq([SHARE_LINK, ...links].join("\n"))} "$D" "$R"`);
  return lines;
}

/**
 * The end of a delete: the service dir goes, but for `shared/`'s data (fleet's own env files
 * excepted), which is kept unless `deleteShared`. Prints `kept_shared=<dir>` when it kept some.
 */
export function removeServiceDirLines(deleteShared: boolean): string[] {
  if (deleteShared) return [`rm -rf "$D"`];
  const own = FLEET_OWN.map((n) => `! -name ${shq(n)}`).join(" ");
  return [
    `if [ -d "$D/shared" ] && [ -n "$(find "$D/shared" -mindepth 1 -maxdepth 1 ${own} -print -quit)" ]; then`,
    `  find "$D" -mindepth 1 -maxdepth 1 ! -name shared -exec rm -rf {} +`,
    ...FLEET_OWN.map((n) => `  rm -rf "$D/shared/"${shq(n)}`),
    `  echo "kept_shared=$D/shared"`,
    `else rm -rf "$D"; fi`,
  ];
}
