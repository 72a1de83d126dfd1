/**
 * cloud-init user data that installs a host key made by fleet (and no other), so the key fleet
 * pins is the key the server presents from its first boot.
 */
export function cloudInitUserData(hostPrivateKey: string, hostPublicKey: string): string {
  const indented = hostPrivateKey
    .trim()
    .split("\n")
    .map((line) => `    ${line}`)
    .join("\n");
  return [
    "#cloud-config",
    "ssh_deletekeys: true",
    "ssh_genkeytypes: []",
    "ssh_keys:",
    "  ed25519_private: |",
    indented,
    `  ed25519_public: ${JSON.stringify(hostPublicKey.trim())}`,
    "",
  ].join("\n");
}
