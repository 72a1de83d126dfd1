/** Replaces every secret value (and each of its lines) in `text` with `[secret]`. */
export function redact(text: string, secrets: readonly string[]): string {
  const needles = new Set<string>();
  for (const secret of secrets) {
    if (!secret) continue;
    // Secrets short enough to occur by chance ("1", "on") would shred the evidence; they still
    // never reach argv or logs because scripts travel on stdin.
    if (secret.length >= 4) needles.add(secret);
    for (const line of secret.split("\n")) if (line.trim().length >= 8) needles.add(line);
  }
  let out = text;
  for (const needle of [...needles].sort((a, b) => b.length - a.length)) {
    out = out.split(needle).join("[secret]");
  }
  return out;
}

/** The last `lines` lines of `text`, without a trailing blank line. */
export function tail(text: string, lines: number): string {
  const all = text.replace(/\s+$/, "").split("\n");
  return all.slice(Math.max(0, all.length - lines)).join("\n");
}
