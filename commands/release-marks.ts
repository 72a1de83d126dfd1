/**
 * fleet's own facts about each release (staged, activated, its deps set, its commit), kept where
 * only root can write: `<service>/.marks/<release>/<mark>` (docs/security.md). A release tree
 * belongs to the service's user, so root never writes a marker through it, and never reads one
 * from it except the markers of releases staged before this store existed (read through
 * `dd iflag=nofollow,nonblock`: never through a link, never blocking on a FIFO). The first write
 * to such a release imports them. Pure builders; the functions need `$D` (the service dir).
 */
import { shq } from "./quote";

/** A mark of one release: the name of its file in `.marks/<release>/`. */
export type ReleaseMark = "staged" | "activated" | "deps" | "commit";

/** Where releases staged before the mark store kept each mark, inside the release itself. */
const LEGACY_NAME: Record<ReleaseMark, string> = {
  staged: ".fleet-staged",
  activated: ".fleet-activated",
  deps: ".fleet-deps",
  commit: "REVISION",
};

const MARKS = `"$D/.marks"`;

/**
 * The shell functions, as one block for a script's header:
 * - `mark_get <release> <mark>`: the mark's first line (empty when unset); always exits 0;
 * - `mark_has <release> <mark>`: exit 0 when set;
 * - `mark_set <release> <mark> <value>` and `mark_clear <release> <mark>`;
 * - `mark_drop <release>`: all of a release's marks (with the release itself).
 */
export const MARK_FUNCTIONS = [
  `legacy_name() { case $1 in ${Object.entries(LEGACY_NAME)
    .map(([mark, file]) => `${mark}) echo ${shq(file)};;`)
    .join(" ")} esac; }`,
  // A regular file in the release, its first line; never through a link, never blocking.
  `legacy_read() { lf_="$D/releases/$1/$(legacy_name "$2")"; [ -f "$lf_" ] && [ ! -L "$lf_" ] || return 1; dd if="$lf_" iflag=nofollow,nonblock bs=512 count=1 status=none 2>/dev/null | head -n 1; }`,
  `mark_init() {`,
  `  [ -d ${MARKS}/"$1" ] && return 0`,
  `  mkdir -p ${MARKS}; mt=${MARKS}/".$1.tmp"; rm -rf "$mt"; mkdir "$mt"`,
  `  for mn in ${Object.keys(LEGACY_NAME).join(" ")}; do if mv_=$(legacy_read "$1" "$mn"); then printf '%s\\n' "$mv_" > "$mt/$mn"; fi; done`,
  `  mv -T "$mt" ${MARKS}/"$1"`,
  `}`,
  `mark_get() { if [ -d ${MARKS}/"$1" ]; then head -n 1 ${MARKS}/"$1/$2" 2>/dev/null || true; else legacy_read "$1" "$2" || true; fi; }`,
  `mark_has() { if [ -d ${MARKS}/"$1" ]; then [ -f ${MARKS}/"$1/$2" ]; else legacy_read "$1" "$2" >/dev/null; fi; }`,
  `mark_set() { mark_init "$1"; printf '%s\\n' "$3" > ${MARKS}/"$1/.$2.tmp" && mv -f ${MARKS}/"$1/.$2.tmp" ${MARKS}/"$1/$2"; }`,
  `mark_clear() { mark_init "$1"; rm -f ${MARKS}/"$1/$2"; }`,
  `mark_drop() { rm -rf ${MARKS}/"$1" ${MARKS}/".$1.tmp"; }`,
].join("\n");

/**
 * True (exit 0) when the release can be activated as it is: staged, built and migrated to the
 * end, or activated before. A release without either is what an interrupted deploy left
 * half-built: it is staged again. `release` is a shell word.
 */
export function releaseReadyTest(release: string): string {
  return `{ mark_has ${release} staged || mark_has ${release} activated; }`;
}

/** A line that prints `<key>=<commit>` for the release (a shell word), when it has a commit. */
export function commitFactLine(key: string, release: string): string {
  return `c_=$(mark_get ${release} commit); if [ -n "$c_" ]; then echo "${key}=$c_"; fi`;
}
