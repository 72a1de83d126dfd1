import { systemdEnvValue, systemdExecArg } from "./quote";
import { UNIT_MARKER, type ServiceLayout } from "./layout";

export interface UnitArgs {
  readonly name: string;
  readonly runAs: string;
  readonly start: string;
  readonly layout: ServiceLayout;
  /**
   * A template unit behind the proxy: instance `<unit>@<port>` runs the release
   * `<dir>/instances/<port>` links to, with `<dir>/shared/instances/<port>.env` (the service's
   * environment plus PORT). Two instances, old and new, run side by side during a switch.
   */
  readonly instance?: boolean;
}

/**
 * Renders the systemd unit. WorkingDirectory is the `current` symlink, which systemd resolves at
 * start, so a restart after the switch runs the new release. The start limit is disabled on
 * purpose: a deploy followed by an automatic rollback restarts twice within seconds, and the
 * default (5 starts in 10 s) would refuse the rollback's start.
 */
export function renderUnit(args: UnitArgs): string {
  return [
    UNIT_MARKER,
    "[Unit]",
    args.instance
      ? `Description=fleet service ${args.name}, instance on port %i`
      : `Description=fleet service ${args.name}`,
    "After=network-online.target",
    "Wants=network-online.target",
    "StartLimitIntervalSec=0",
    "",
    "[Service]",
    "Type=simple",
    `User=${args.runAs}`,
    `WorkingDirectory=${args.instance ? `${args.layout.dir}/instances/%i` : args.layout.current}`,
    `EnvironmentFile=${args.instance ? `${args.layout.shared}/instances/%i.env` : args.layout.envFile}`,
    // As written, under sh: `cd x && …` and `VAR=… cmd` work; stop signals reach the whole group.
    `ExecStart=/bin/sh -c ${systemdExecArg(args.start)}`,
    "Restart=always",
    "RestartSec=1",
    "KillMode=control-group",
    "TimeoutStopSec=10",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/** Renders the EnvironmentFile: user env, then fleet's own FLEET_RELEASE / FLEET_COMMIT. */
export function renderEnvFile(env: Readonly<Record<string, string>>, releaseId: string, commit: string): string {
  const all: Record<string, string> = { ...env, FLEET_RELEASE: releaseId, FLEET_COMMIT: commit };
  return (
    Object.keys(all)
      .sort()
      .map((key) => `${key}=${systemdEnvValue(all[key]!)}`)
      .join("\n") + "\n"
  );
}
