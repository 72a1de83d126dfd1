/**
 * The on-host layout of one service, Capistrano-style:
 *   <root>/<name>/releases/<id>/   one tree per release, REVISION inside
 *   <root>/<name>/deps/<hash>/     installed dependencies, shared by releases with the same lockfiles
 *   <root>/<name>/shared/          files that outlive releases (env, 0600)
 *   <root>/<name>/current          symlink to the serving release, replaced by rename
 *   <root>/<name>/deploy.log       one line per deploy attempt
 *   <root>/<name>/.lock/           the deploy lock (mkdir is atomic)
 *   <root>/<name>/.marks/<id>/     fleet's facts about each release (commands/release-marks.ts)
 *   <root>/<name>/.owner           which resource deployed here last (a replacement's delete reads it)
 * A release, a deps set and each shared entry belong to the service's user; everything else to
 * root (docs/security.md).
 */
export interface ServiceLayout {
  readonly dir: string;
  readonly releases: string;
  readonly deps: string;
  readonly shared: string;
  readonly current: string;
  readonly envFile: string;
  readonly auditLog: string;
  readonly lock: string;
  readonly staging: string;
  readonly rollbackState: string;
  readonly unitFile: string;
  /** Behind the proxy: the template unit of the service's instances, `<unit>@<port>`. */
  readonly instanceUnitFile: string;
  /** Behind the proxy: each instance's socket and its forwarder (commands/proxy.ts). */
  readonly socketUnitFile: string;
  readonly forwarderUnitFile: string;
}

export function serviceLayout(root: string, name: string, unitName: string): ServiceLayout {
  const dir = `${root.replace(/\/+$/, "")}/${name}`;
  return {
    dir,
    releases: `${dir}/releases`,
    deps: `${dir}/deps`,
    shared: `${dir}/shared`,
    current: `${dir}/current`,
    envFile: `${dir}/shared/env`,
    auditLog: `${dir}/deploy.log`,
    lock: `${dir}/.lock`,
    staging: `${dir}/.staging`,
    rollbackState: `${dir}/.rollback`,
    unitFile: `/etc/systemd/system/${unitName}.service`,
    instanceUnitFile: `/etc/systemd/system/${unitName}@.service`,
    socketUnitFile: `/etc/systemd/system/${unitName}-sock@.socket`,
    forwarderUnitFile: `/etc/systemd/system/${unitName}-sock@.service`,
  };
}

export function releaseDir(layout: ServiceLayout, releaseId: string): string {
  return `${layout.releases}/${releaseId}`;
}

export function depsDir(layout: ServiceLayout, hash: string): string {
  return `${layout.deps}/${hash}`;
}

/** The comment that marks a unit file as fleet's: fleet never overwrites a unit without it. */
export const UNIT_MARKER = "# Managed by fleet. Local edits are overwritten on deploy.";
