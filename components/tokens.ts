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
