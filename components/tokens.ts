/** Every type token fleet registers, in one place. */
export const TOKENS = {
  host: "fleet:index:Host",
  service: "fleet:index:Service",
  databaseBackup: "fleet:index:DatabaseBackup",
  goldenImage: "fleet:index:GoldenImage",
} as const;

/** Dynamic resources are registered as `pulumi-nodejs:dynamic/fleet:<name>`. */
export const DYNAMIC_MODULE = "fleet";
export const DYNAMIC_TYPES = {
  serviceRelease: "ServiceRelease",
  backupSet: "BackupSet",
  hostBootstrap: "HostBootstrap",
  hostKey: "HostKey",
  dockerImage: "DockerImage",
  hcloudImage: "HcloudImage",
} as const;

/**
 * What each component names its children: `${name}-<suffix>`, with `{ parent: this }` (see
 * childName). One list, for the components and for `npm run deploy -- --hosts/--services`
 * (operate/deploy-targets.ts), which must target a component's children by name: Pulumi's
 * `--target` on a component does not reach them. A suffix has no `-`, so `<a>-<suffix>` is
 * never a child of another component `<b>` of the same type.
 */
export const CHILD_SUFFIXES = {
  host: { bootstrap: "bootstrap", hostKey: "hostkey", sshKey: "sshkey", firewall: "firewall", server: "server" },
  service: { release: "release" },
  databaseBackup: { set: "set" },
  goldenImage: { docker: "image", hcloud: "snapshot" },
} as const satisfies Record<keyof typeof TOKENS, Record<string, string>>;

/** A component's child's name: `<component>-<suffix>`. */
export function childName(component: string, suffix: string): string {
  return `${component}-${suffix}`;
}
