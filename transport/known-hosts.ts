/** Key types by preference: the one ssh2 will be told to accept when several are listed. */
const PREFERENCE = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"];

/**
 * Finds the pinned key for `address:port` in known_hosts text ("type base64"), preferring
 * ed25519. Hashed entries (|1|…) cannot be matched without the name, so they are not read.
 */
export function hostKeyFromKnownHosts(text: string, address: string, port = 22): string | undefined {
  const wanted = port === 22 ? [address, `[${address}]:22`] : [`[${address}]:${port}`];
  const keys: string[] = [];
  // A key on an "@revoked" line must never be accepted (sshd(8) KNOWN_HOSTS), whatever else lists it.
  const revoked = new Set<string>();
  for (const line of text.split("\n")) {
    const parts = line.trim().split(/\s+/);
    if (parts[0] === "@revoked" && parts.length >= 4) revoked.add(`${parts[2]} ${parts[3]}`);
    if (parts.length < 3 || parts[0]!.startsWith("#") || parts[0]!.startsWith("@")) continue;
    if (!parts[0]!.split(",").some((h) => wanted.includes(h))) continue;
    keys.push(`${parts[1]} ${parts[2]}`);
  }
  const usable = keys.filter((k) => !revoked.has(k));
  const rank = (k: string) => {
    const i = PREFERENCE.indexOf(k.split(" ")[0]!);
    return i < 0 ? PREFERENCE.length : i;
  };
  return usable.sort((a, b) => rank(a) - rank(b))[0];
}
