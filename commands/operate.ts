/**
 * The remote command lines of the operating commands (`npm run logs`, `npm run exec`, issue 20):
 * pure builders, all quoting through commands/quote.ts.
 */
import { shq } from "./quote";
import { ROOT_PATH } from "./service-shell";
import { serviceLayout } from "./layout";
import { proxyLayout } from "./proxy";

/** Runs `script` under /bin/sh as root: directly for root, through `sudo -n` otherwise (as transport runScript does). */
export function asRoot(sshUser: string, script: string): string {
  return `${sshUser === "root" ? "" : "sudo -n "}/bin/sh -c ${shq(script)}`;
}

/** systemd time-span units (systemd.time(7)), as `--since 10m` takes them. */
const SPAN_UNIT =
  "(?:us|usec|ms|msec|s|sec|second|seconds|m|min|minute|minutes|h|hr|hour|hours|d|day|days|w|week|weeks)";
const SPAN = new RegExp(`^\\d+ ?${SPAN_UNIT}$`);
const RELATIVE = new RegExp(`^[+-]\\d+ ?${SPAN_UNIT}$`);
const AGO = new RegExp(`^\\d+ ?${SPAN_UNIT} ago$`);
const KEYWORDS = new Set(["now", "today", "yesterday", "tomorrow"]);
const TIMESTAMP = /^(?:\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?)?|\d{2}:\d{2}(?::\d{2})?)$/;
const EPOCH = /^@\d+$/;

/**
 * `--since` as journalctl takes it, or undefined when it is not one of the forms accepted: a
 * duration (`10m`, `2h`: that long ago), journalctl's own relative (`-10m`, `3 hours ago`),
 * keyword (`today`), timestamp (`2026-12-01 10:00`, `10:00`) or epoch (`@1700000000`) forms.
 */
export function journalSince(value: string): string | undefined {
  const v = value.trim();
  if (SPAN.test(v)) return `-${v.replace(" ", "")}`;
  if (RELATIVE.test(v) || AGO.test(v) || KEYWORDS.has(v) || TIMESTAMP.test(v) || EPOCH.test(v)) return v;
  return undefined;
}

export interface JournalArgs {
  readonly unitName: string;
  /** Behind the proxy the service runs as instances `<unit>@<port>.service`. */
  readonly proxied: boolean;
  readonly lines: number;
  /** In journalctl's form (see journalSince). */
  readonly since?: string;
  readonly follow: boolean;
}

/** The `-u` match of a service's journal: its unit, or all its proxy instances. */
export function journalUnitMatch(unitName: string, proxied: boolean): string {
  return `-u ${shq(proxied ? `${unitName}@*` : unitName)}`;
}

/** The journalctl command line (no pager, no host name: the caller prefixes each line with the host). */
export function journalCommand(a: JournalArgs): string {
  const since = a.since === undefined ? "" : ` --since ${shq(a.since)}`;
  return `journalctl ${journalUnitMatch(a.unitName, a.proxied)} -n ${a.lines}${since} --no-pager --no-hostname${a.follow ? " -f" : ""}`;
}

/**
 * The host-side script of `npm run logs`. Following, journalctl runs in the background and a
 * watcher reads the channel's stdin (kept as fd 3: an asynchronous list's stdin is /dev/null
 * otherwise, POSIX sh): when the caller ends its input (Ctrl-C), the watcher kills journalctl.
 * OpenSSH often refuses channel signals, and a journalctl left to notice the closed channel
 * only does so on its next line, so this is what leaves no orphan. journalctl killed this way
 * exits 143; the caller knows it stopped it.
 */
export function logsScript(a: JournalArgs): string {
  const journal = journalCommand(a);
  if (!a.follow) return journal;
  return [
    `exec 3<&0 </dev/null`,
    `${journal} 3<&- & p=$!`,
    `{ cat <&3 >/dev/null 2>&1; kill "$p" 2>/dev/null; } >/dev/null 2>&1 &`,
    `exec 3<&-`,
    `wait "$p"`,
  ].join("\n");
}

export interface ExecTarget {
  readonly root: string;
  readonly service: string;
  readonly unitName: string;
  /** The user the service runs as. */
  readonly runAs: string;
  /** Behind the proxy the serving instance's env file is `shared/instances/<port>.env` (no `shared/env`). */
  readonly proxied?: boolean;
}

/** The serving release's directory: `<root>/<service>/current`. */
export function currentDir(t: ExecTarget): string {
  return serviceLayout(t.root, t.service, t.unitName).current;
}

/** Exits 0 when the service has a serving release on the host (run as root: see asRoot). */
export function deployedCheck(t: ExecTarget): string {
  return `test -d ${shq(currentDir(t))}/`;
}

/**
 * What the service's own shell runs, as the service's user (or as root for `runAs: root`): the
 * env file's assignments, read from fd 3 (the user could not open the 0600 file itself) and
 * exported as `set -a; . file` did, then the command, found through the PATH the env file set.
 */
const EXEC_AS_SERVICE = `set -a; eval "$(cat <&3)"; set +a; exec 3<&-; exec "$@"`;

/**
 * The host-side script of `npm run exec`, run as root (asRoot): in the serving release, with the
 * env file the deploy wrote (env and secret env; never printed), as the service's user.
 *
 * Root's shell never sources the env file and never resolves a command through it (issue 29, "a
 * service's own account never becomes root"): the env may set PATH to a directory the service's
 * user can write (its venv in the release), and a `runuser` planted there would run as root. So
 * root only opens the file on fd 3 (refusing a link), then runs `env` from the system's PATH, which
 * clears root's environment and finds `runuser` in ROOT_PATH; the service's shell, as the user,
 * reads the env from fd 3 and only then resolves the command. Every argv element is quoted on its
 * own, so it arrives byte-exact.
 */
export function execScript(t: ExecTarget, argv: readonly string[]): string {
  if (argv.length === 0) throw new Error("execScript: no command to run");
  const layout = serviceLayout(t.root, t.service, t.unitName);
  const command = argv.map(shq).join(" ");
  const envFile = t.proxied
    ? `${shq(`${layout.shared}/instances/`)}"$(cat ${shq(proxyLayout(layout.dir).servingFile)} 2>/dev/null)".env`
    : shq(layout.envFile);
  // The terminal's type and the locale pass through (sshd and sudo set them); nothing else of root's.
  const kept = ["TERM", "LANG"].map((v) => `\${${v}+"${v}=$${v}"}`);
  // runuser sets HOME, SHELL, USER and LOGNAME for the user; root keeps its own HOME.
  const as = t.runAs === "root" ? [`\${HOME+"HOME=$HOME"}`] : [`runuser -u ${shq(t.runAs)} --`];
  return [
    `cd ${shq(layout.current)}/ || exit 126`,
    `ef=${envFile}`,
    `if [ -L "$ef" ]; then echo "exec: refusing to read the env file $ef: it is a symbolic link (fleet writes a regular file; redeploy to rewrite it)" >&2; exit 126; fi`,
    `[ -f "$ef" ] || ef=/dev/null`,
    [
      `command -p env -i PATH=${ROOT_PATH}`,
      ...kept,
      ...as,
      `/bin/sh -c ${shq(EXEC_AS_SERVICE)} sh ${command} 3<"$ef"`,
    ].join(" "),
  ].join("\n");
}
