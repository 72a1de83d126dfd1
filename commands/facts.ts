/** Parses the `key=value` lines scripts print; repeated keys (e.g. `release=`) collect in `all`. */
export interface Facts {
  readonly one: Record<string, string>;
  readonly all: Record<string, string[]>;
}

export function parseFacts(stdout: string): Facts {
  const one: Record<string, string> = {};
  const all: Record<string, string[]> = {};
  for (const line of stdout.split("\n")) {
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    if (!/^[a-z_]+$/.test(key)) continue;
    const value = line.slice(eq + 1);
    one[key] = value;
    (all[key] ??= []).push(value);
  }
  return { one, all };
}

export function decodeBase64(value: string | undefined): string {
  return value ? Buffer.from(value, "base64").toString("utf8") : "";
}
