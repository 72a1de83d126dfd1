import * as pulumi from "@pulumi/pulumi";
import { ShippedResource } from "./shipped-resource";
import { shortStacks } from "./short-stack";
import type { ServiceSpec } from "../model/service";
import type { ImageArtifact } from "../providers/image/model";
import {
  planRelease,
  planSettings,
  startCommand,
  unitFile,
  type ReleaseArgs,
  type ReleasePlan,
  type SettingsArgs,
} from "../source/plan";
import type { SshConnection } from "../transport/connection";
import type { NotifyTarget } from "../model/notify";
import type { DatabaseBackup } from "./database-backup";
import { Host } from "./host";
import { CHILD_SUFFIXES, childName, DYNAMIC_TYPES, TOKENS } from "./tokens";

export type { HealthArgs, Pin } from "../source/plan";

/**
 * A Service's arguments: the plan's (source/plan.ts documents them and their defaults), with an
 * image source as a GoldenImage's `artifact` (`{ image: golden.artifact }`), plus what only the
 * program has: the host, the secrets, the restore point and the notify targets.
 */
export interface ServiceArgs extends Omit<SettingsArgs<pulumi.Input<ImageArtifact>>, "name"> {
  /** Where to deploy: a Host, or an SSH connection. */
  readonly host: Host | pulumi.Input<SshConnection>;
  /** Secret environment: written to a 0600 file, never to plain state or logs. Default {}. */
  readonly secretEnv?: pulumi.Input<Readonly<Record<string, pulumi.Input<string>>>>;
  /** The service's name on its host (directory, unit). Default: the resource name. */
  readonly serviceName?: string;
  /** The host's name, as hooks see it (FLEET_HOST). Default: the host's address. */
  readonly hostName?: string;
  /**
   * When an automatic rollback follows a migration, stop the service, restore this backup's
   * pre-deploy backup, then start the previous release. The Service also waits for the backup.
   * Default: migrations stay applied after a rollback (and the failure says so).
   */
  readonly restoreOnRollback?: DatabaseBackup;
  /** Where deploy outcomes are announced (success, failure, rollback, critical). Secret. Default none. */
  readonly notify?: pulumi.Input<readonly NotifyTarget[]>;
}

/** The dynamic resource behind a Service: one release of one service on one host. */
export class ServiceRelease extends ShippedResource {
  declare readonly releaseId: pulumi.Output<string>;
  declare readonly commit: pulumi.Output<string>;
  declare readonly host: pulumi.Output<string>;
  declare readonly path: pulumi.Output<string>;
  declare readonly deployedAt: pulumi.Output<string>;
  declare readonly depsReinstalled: pulumi.Output<boolean>;
  declare readonly previousReleaseId: pulumi.Output<string>;
  declare readonly retainedReleases: pulumi.Output<string[]>;

  constructor(
    name: string,
    spec: { [K in keyof ServiceSpec]: pulumi.Input<ServiceSpec[K]> },
    opts?: pulumi.CustomResourceOptions,
  ) {
    const outputsOnly = {
      path: undefined,
      deployedAt: undefined,
      depsReinstalled: undefined,
      previousReleaseId: undefined,
      retainedReleases: undefined,
      live: undefined,
    };
    super(
      "service",
      DYNAMIC_TYPES.serviceRelease,
      name,
      { ...spec, ...outputsOnly },
      { ...opts, additionalSecretOutputs: ["connection", "secretEnv", "notify", "restoreOnRollback"] },
    );
  }
}

/**
 * What a Service with these arguments will deploy (`planRelease`, once an image source is
 * built): plain for git and path sources, so that preview knows the release (old → new); an
 * Output for an image. Pre-deploy backups are keyed by its `releaseId`.
 */
export function plannedRelease(
  serviceName: string,
  args: Omit<ReleaseArgs<pulumi.Input<ImageArtifact>>, "name">,
): ReleasePlan | pulumi.Output<ReleasePlan> {
  const { source } = args;
  if (!("image" in source)) return planRelease({ ...args, name: serviceName, source });
  return pulumi
    .output(source.image)
    .apply((image) => planRelease({ ...args, name: serviceName, source: { image: image as ImageArtifact } }));
}

/** `dependsOn` as a list of resources (it may be one resource or a list). */
function toResources(dependsOn: pulumi.ComponentResourceOptions["dependsOn"]): pulumi.Input<pulumi.Resource>[] {
  if (!dependsOn) return [];
  return Array.isArray(dependsOn) ? dependsOn : [dependsOn as pulumi.Input<pulumi.Resource>];
}

/**
 * A service deployed as releases over SSH: upload, install when the lockfiles changed, build,
 * switch `current` atomically, restart, pass the health gate or roll back by itself.
 */
export class Service extends pulumi.ComponentResource {
  readonly releaseId: pulumi.Output<string>;
  readonly commit: pulumi.Output<string>;
  readonly host: pulumi.Output<string>;
  readonly path: pulumi.Output<string>;
  readonly deployedAt: pulumi.Output<string>;
  readonly depsReinstalled: pulumi.Output<boolean>;

  constructor(name: string, args: ServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    // The SDK's frames (its stack reader, Resource, ComponentResource), this one, its caller and
    // the caller's caller: see short-stack.ts.
    const restore = shortStacks(6);
    try {
      super(TOKENS.service, name, {}, opts);
    } finally {
      restore();
    }
    // The name on the host (directory, unit) may differ from the resource's: one service on
    // several hosts is one Service resource per host.
    const serviceName = args.serviceName ?? name;
    const settings = planSettings({ ...args, name: serviceName });
    const release = plannedRelease(serviceName, args);
    const connection = pulumi.secret(args.host instanceof Host ? args.host.connection : pulumi.output(args.host));
    const secretEnv = pulumi.secret(pulumi.output(args.secretEnv ?? {})) as pulumi.Output<Record<string, string>>;

    // Known now for git and path sources; an image's release is known once it is built. A pin
    // is known either way.
    const releaseInputs = pulumi.Output.isInstance(release)
      ? {
          releaseId: release.apply((r) => r.releaseId),
          commit: release.apply((r) => r.commit),
          source: release.apply((r) => r.source),
          ...(args.pin ? { pinned: true } : {}),
        }
      : release;
    const start =
      args.start ??
      pulumi
        .all([release, pulumi.unsecret(secretEnv.apply((env) => Object.keys(env)))])
        .apply(([r, keys]) => startCommand({ ...args, name: serviceName }, r.source, keys));
    // runAs defaults to the connection's user, which may only be known once the host exists.
    const runAs =
      args.runAs !== undefined ? pulumi.output(args.runAs) : pulumi.unsecret(connection.apply((c) => c.user));
    const unit = pulumi.all([runAs, start]).apply(([user, command]) => unitFile(settings, user, command));

    // Each property is its own input, so that `pulumi preview --diff` shows exactly what changes
    // (release, unit lines, env keys); secretEnv shows as [secret].
    const inputs: { [K in keyof ServiceSpec]: pulumi.Input<ServiceSpec[K]> } = {
      ...settings,
      connection,
      host: pulumi.unsecret(connection.apply((c) => c.host)),
      runAs,
      ...releaseInputs,
      start,
      unit,
      secretEnv,
      notify: pulumi.secret(pulumi.output(args.notify ?? [])) as pulumi.Output<NotifyTarget[]>,
      ...(args.restoreOnRollback ? { restoreOnRollback: args.restoreOnRollback.restorePoint } : {}),
      ...(args.hostName !== undefined ? { hostName: args.hostName } : {}),
    };
    // A Host's bootstrap (user, curl, directories) must be done before the first deploy.
    // What the Service waits for (its Host's bootstrap, a DatabaseBackup) must finish before the
    // release switches; a component's dependsOn does not reach its children by itself.
    const waitFor = [
      ...(args.host instanceof Host ? [args.host] : []),
      ...(args.restoreOnRollback ? [args.restoreOnRollback] : []),
      ...toResources(opts?.dependsOn),
    ];
    const deployed = new ServiceRelease(childName(name, CHILD_SUFFIXES.service.release), inputs, {
      parent: this,
      dependsOn: waitFor,
    });

    this.releaseId = deployed.releaseId;
    this.commit = deployed.commit;
    this.host = deployed.host;
    this.path = deployed.path;
    this.deployedAt = deployed.deployedAt;
    this.depsReinstalled = deployed.depsReinstalled;
    // Only what a release does not change: changed component outputs cost one more write of
    // the whole checkpoint per service per release (docs/state.md). The release's figures are in
    // its ServiceRelease and in the stack's `services` output.
    this.registerOutputs({ host: this.host });
  }
}
