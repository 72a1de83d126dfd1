import * as pulumi from "@pulumi/pulumi";
import { shippedProvider } from "../providers/ship";
import { serviceLayout } from "../commands/layout";
import { renderUnit } from "../commands/unit";
import type { HealthSpec, InstallSpec, ResolvedSource, ServiceSpec } from "../model/service";
import type { ImageArtifact } from "../providers/image/model";
import { dockerRunCommand } from "../commands/image";
import { imageReleaseId } from "../decisions/release-id";
import { parseDuration } from "../model/duration";
import { IMAGE_BUILDS_ITSELF, START_REQUIRED } from "../model/rules/service";
import { resolveDepsHash, resolveRelease, type SourceArgs } from "../source/resolve";
import type { SshConnection } from "../transport/connection";
import type { NotifyTarget } from "../model/notify";
import type { DatabaseBackup } from "./database-backup";
import { Host } from "./host";
import { DYNAMIC_MODULE, DYNAMIC_TYPES, TOKENS } from "./tokens";

export interface HealthArgs {
  /** URL probed on the host itself, e.g. "http://127.0.0.1:8891/api/health". */
  readonly url: string;
  /** Expected HTTP status. Default 200. */
  readonly expectStatus?: number;
  /** A substring the body must contain. Default: not checked. */
  readonly bodyContains?: string;
  /** An endpoint whose JSON `field` (default "commit") must report the deployed commit. */
  readonly version?: { readonly url: string; readonly field?: string };
  /** How long a new release may take to become healthy. Default "30s". */
  readonly timeout?: string;
  /** Delay between probes. Default "100ms". */
  readonly interval?: string;
}

export interface ServiceArgs {
  /** Where to deploy: a Host, or an SSH connection. */
  readonly host: Host | pulumi.Input<SshConnection>;
  /**
   * A git repository at a ref (default HEAD; a dirty tree is refused unless allowDirty), a
   * directory, or a GoldenImage's `artifact` (`{ image: golden.artifact }`).
   */
  readonly source: SourceArgs | { readonly image: pulumi.Input<ImageArtifact> };
  /** Dependencies, installed only when the `when` files change; kept in `deps/<hash>/`. */
  readonly install?: { readonly run: string; readonly when?: readonly string[] };
  /** Build command, run inside each new release. Default: none. */
  readonly build?: string;
  /**
   * Migrations, run once in each new release (with its environment) before the switch; a failure
   * means no switch. An automatic rollback does not undo them. Default: none.
   */
  readonly migrate?: string;
  /**
   * The command systemd runs, in the release directory. Required for git and path sources; for
   * an image, default: `docker run` of the image with the service's environment.
   */
  readonly start?: string;
  /** Environment for the service. Default {}. */
  readonly env?: Readonly<Record<string, string>>;
  /** Secret environment: written to a 0600 file, never to plain state or logs. Default {}. */
  readonly secretEnv?: pulumi.Input<Readonly<Record<string, pulumi.Input<string>>>>;
  /** The health gate a new release must pass before it counts as deployed. */
  readonly health: HealthArgs;
  /** Releases kept on the host, counting the serving one. Default 5. */
  readonly keepReleases?: number;
  /** fleet's root directory on the host. Default "/srv/fleet". */
  readonly root?: string;
  /** The account the service runs as. Default: the connection's user. */
  readonly runAs?: string;
  /** The service's name on its host (directory, unit). Default: the resource name. */
  readonly serviceName?: string;
  /** The systemd unit name. Default: the service name. */
  readonly unitName?: string;
  /** Break a deploy lock whose holder process is gone. Default false. */
  readonly breakStaleLock?: boolean;
  /** Limit for any single remote step (upload, install, build). Default "10m". */
  readonly stepTimeout?: string;
  /**
   * When an automatic rollback follows a migration, stop the service, restore this backup's
   * pre-deploy backup, then start the previous release. The Service also waits for the backup.
   * Default: migrations stay applied after a rollback (and the failure says so).
   */
  readonly restoreOnRollback?: DatabaseBackup;
  /**
   * Rollback pin (`npm run rollback`): deploy exactly this release, which the host must still
   * have; a git source deploys the pinned commit. Default: none (deploy the source's release).
   */
  readonly pin?: { readonly releaseId: string; readonly commit: string };
  /** Where deploy outcomes are announced (success, failure, rollback, critical). Secret. Default none. */
  readonly notify?: pulumi.Input<readonly NotifyTarget[]>;
  /** Refuse to deploy when the host has less free disk than this under root, in MiB. Default 512. */
  readonly minFreeDiskMb?: number;
}

/** The dynamic resource behind a Service: one release of one service on one host. */
export class ServiceRelease extends pulumi.dynamic.Resource {
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
      shippedProvider("service"),
      name,
      { ...spec, ...outputsOnly },
      { ...opts, additionalSecretOutputs: ["connection", "secretEnv", "notify", "restoreOnRollback"] },
      DYNAMIC_MODULE,
      DYNAMIC_TYPES.serviceRelease,
    );
  }
}

interface PlannedRelease {
  readonly releaseId: pulumi.Input<string>;
  readonly commit: pulumi.Input<string>;
  readonly source: pulumi.Input<ResolvedSource>;
  readonly install?: InstallSpec;
  readonly start: pulumi.Input<string>;
}

/**
 * What the service will deploy, resolved now on the deploying machine so that preview knows
 * the release (old → new): a commit or a tree's hash, or (for an image) the image's id.
 */
function releaseOf(name: string, args: ServiceArgs, unitName: string): PlannedRelease {
  const label = `services.${name}`;
  if ("image" in args.source) {
    if (args.install || args.build) throw new Error(`${label}: ${IMAGE_BUILDS_ITSELF}`);
    const artifact = pulumi.output(args.source.image);
    const releaseId = artifact.apply((a) => imageReleaseId(a.imageId));
    const envKeys = pulumi
      .output(args.secretEnv ?? {})
      .apply((secretEnv) => [
        ...Object.keys(args.env ?? {}),
        ...Object.keys(secretEnv),
        "FLEET_RELEASE",
        "FLEET_COMMIT",
      ]);
    return {
      releaseId,
      commit: releaseId,
      source: artifact.apply((a): ResolvedSource => ({ kind: "image", ...a })),
      start:
        args.start ??
        pulumi
          .all([artifact, pulumi.unsecret(envKeys)])
          .apply(([a, keys]) => dockerRunCommand({ container: unitName, image: a.imageId, envKeys: keys })),
    };
  }
  if (!args.start) throw new Error(`${label}.start: ${START_REQUIRED}`);
  // A pinned git service resolves the pinned commit (its install hash is that commit's).
  const source =
    args.pin && "git" in args.source ? { ...args.source, ref: args.pin.commit, allowDirty: true } : args.source;
  const release = resolveRelease(source, args.build, label);
  return {
    releaseId: args.pin?.releaseId ?? release.releaseId,
    commit: args.pin?.commit ?? release.commit,
    source: release.source,
    start: args.start,
    ...(args.install
      ? {
          install: {
            run: args.install.run,
            when: [...(args.install.when ?? [])],
            hash: resolveDepsHash(release, args.install.when ?? [], args.install.run),
          },
        }
      : {}),
  };
}

/** `dependsOn` as a list of resources (it may be one resource or a list). */
function toResources(dependsOn: pulumi.ComponentResourceOptions["dependsOn"]): pulumi.Input<pulumi.Resource>[] {
  if (!dependsOn) return [];
  return Array.isArray(dependsOn) ? dependsOn : [dependsOn as pulumi.Input<pulumi.Resource>];
}

/** Resolves the health arguments into the provider's form (durations in ms, defaults filled). */
export function healthSpec(args: HealthArgs, label: string): HealthSpec {
  return {
    url: args.url,
    expectStatus: args.expectStatus ?? 200,
    ...(args.bodyContains !== undefined ? { bodyContains: args.bodyContains } : {}),
    ...(args.version ? { version: { url: args.version.url, field: args.version.field ?? "commit" } } : {}),
    timeoutMs: parseDuration(args.timeout ?? "30s", `${label}.health.timeout`),
    intervalMs: parseDuration(args.interval ?? "100ms", `${label}.health.interval`),
  };
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
    super(TOKENS.service, name, {}, opts);
    // The name on the host (directory, unit) may differ from the resource's: one service on
    // several hosts is one Service resource per host.
    const serviceName = args.serviceName ?? name;
    const label = `services.${serviceName}`;
    const root = args.root ?? "/srv/fleet";
    const unitName = args.unitName ?? serviceName;
    const release = releaseOf(serviceName, args, unitName);
    const install = release.install;
    const connection = pulumi.secret(args.host instanceof Host ? args.host.connection : pulumi.output(args.host));
    const health = healthSpec(args.health, label);
    const stepTimeoutMs = parseDuration(args.stepTimeout ?? "10m", `${label}.stepTimeout`);

    // runAs defaults to the connection's user, which may only be known once the host exists.
    const runAs =
      args.runAs !== undefined ? pulumi.output(args.runAs) : pulumi.unsecret(connection.apply((c) => c.user));
    const unit = pulumi
      .all([runAs, release.start])
      .apply(([user, start]) =>
        renderUnit({ name: serviceName, runAs: user, start, layout: serviceLayout(root, serviceName, unitName) }),
      );

    // Each property is its own input, so that `pulumi preview --diff` shows exactly what changes
    // (release, unit lines, env keys); secretEnv shows as [secret].
    const inputs: { [K in keyof ServiceSpec]: pulumi.Input<ServiceSpec[K]> } = {
      name: serviceName,
      connection,
      host: pulumi.unsecret(connection.apply((c) => c.host)),
      root,
      unitName,
      runAs,
      releaseId: release.releaseId,
      commit: release.commit,
      source: release.source,
      ...(install ? { install } : {}),
      ...(args.build ? { build: args.build } : {}),
      ...(args.migrate ? { migrate: args.migrate } : {}),
      start: release.start,
      env: { ...(args.env ?? {}) },
      secretEnv: pulumi.secret(pulumi.output(args.secretEnv ?? {})) as pulumi.Output<Record<string, string>>,
      unit,
      health,
      keepReleases: args.keepReleases ?? 5,
      breakStaleLock: args.breakStaleLock ?? false,
      stepTimeoutMs,
      minFreeDiskMb: args.minFreeDiskMb ?? 512,
      notify: pulumi.secret(pulumi.output(args.notify ?? [])) as pulumi.Output<NotifyTarget[]>,
      ...(args.restoreOnRollback ? { restoreOnRollback: args.restoreOnRollback.restorePoint } : {}),
      ...(args.pin ? { pinned: true } : {}),
    };
    // A Host's bootstrap (user, curl, directories) must be done before the first deploy.
    // What the Service waits for (its Host's bootstrap, a DatabaseBackup) must finish before the
    // release switches; a component's dependsOn does not reach its children by itself.
    const waitFor = [
      ...(args.host instanceof Host ? [args.host] : []),
      ...(args.restoreOnRollback ? [args.restoreOnRollback] : []),
      ...toResources(opts?.dependsOn),
    ];
    const deployed = new ServiceRelease(`${name}-release`, inputs, { parent: this, dependsOn: waitFor });

    this.releaseId = deployed.releaseId;
    this.commit = deployed.commit;
    this.host = deployed.host;
    this.path = deployed.path;
    this.deployedAt = deployed.deployedAt;
    this.depsReinstalled = deployed.depsReinstalled;
    this.registerOutputs({
      releaseId: this.releaseId,
      commit: this.commit,
      host: this.host,
      path: this.path,
      deployedAt: this.deployedAt,
      depsReinstalled: this.depsReinstalled,
    });
  }
}
