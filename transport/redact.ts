/**
 * The forms a secret takes when text carrying it is quoted on its way to us: as the value of a
 * JSON string (an app's structured log line; escaped twice when that line is quoted again) and
 * percent-encoded in a URL (a database URL in a log). `!'()*` are encoded by some tools
 * (Python's quote) and not by others (encodeURIComponent).
 */
function encodedForms(secret: string): string[] {
  const json = JSON.stringify(secret).slice(1, -1);
  const url = encodeURIComponent(secret);
  return [
    json,
    JSON.stringify(json).slice(1, -1),
    url,
    url.replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase()),
  ];
}

/** Replaces every secret value (each of its lines, and its JSON and URL forms) in `text` with `[secret]`. */
export function redact(text: string, secrets: readonly string[]): string {
  const needles = new Set<string>();
  for (const secret of secrets) {
    if (!secret) continue;
    // Secrets short enough to occur by chance ("1", "on") would shred the evidence; they still
    // never reach argv or logs because scripts travel on stdin.
    if (secret.length >= 4) for (const form of [secret, ...encodedForms(secret)]) needles.add(form);
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
