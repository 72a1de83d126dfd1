/**
 * The one place where values become shell text. Every builder quotes through these functions,
 * so a hostile value (quotes, `$()`, backticks, newlines, non-ASCII) is data, never code.
 */

/** POSIX single-quoting: safe for any byte string, including newlines. */
export function shq(value: string): string {
  if (value.includes("\0")) throw new Error("a shell value cannot contain a NUL byte");
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  return "'" + value.replace(/'/g, "'\\''") + "'";
}

/** A shell command that writes `content` byte-exact to stdout (base64 keeps the script ASCII). */
export function emitBytes(content: string): string {
  return `printf '%s' ${shq(Buffer.from(content, "utf8").toString("base64"))} | base64 -d`;
}

/**
 * Writes `content` to `path` atomically (temp file + rename) with `mode`. The content travels as
 * base64, so it may contain anything; the script itself reaches the host on stdin, never in argv.
 */
export function writeFileAtomic(path: string, content: string, mode: string): string {
  const tmp = `${path}.fleet-tmp`;
  return [
    `(umask 077 && ${emitBytes(content)} > ${shq(tmp)})`,
    `chmod ${mode} ${shq(tmp)}`,
    `mv -f ${shq(tmp)} ${shq(path)}`,
  ].join(" && ");
}

/** Quotes a value for a systemd EnvironmentFile: double quotes, with `\ " $ \`` escaped. */
export function systemdEnvValue(value: string): string {
  return '"' + value.replace(/[\\"$`]/g, (c) => "\\" + c) + '"';
}

/**
 * Quotes one argument for a systemd Exec line: C escapes inside double quotes, and `$`/`%`
 * doubled so systemd neither expands variables nor specifiers.
 */
export function systemdExecArg(value: string): string {
  const escaped = value
    .replace(/\\/g, "\\\\")
    .replace(/"/g, '\\"')
    .replace(/\n/g, "\\n")
    .replace(/\t/g, "\\t")
    .replace(/%/g, "%%")
    .replace(/\$/g, "$$$$");
  return `"${escaped}"`;
}
