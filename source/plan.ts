import { IMAGE_BUILDS_ITSELF, START_REQUIRED } from "../model/rules/service";
import { dockerRunCommand } from "../commands/image";
import { serviceLayout } from "../commands/layout";
import { renderUnit } from "../commands/unit";
import { imageReleaseId } from "../decisions/release-id";
import { parseDuration } from "../model/duration";
import type { HealthSpec, HooksSpec, InstallSpec, ResolvedSource, ServiceSpec } from "../model/service";
import type { ImageArtifact } from "../providers/image/model";
import { resolveDepsHash, resolveRelease, type SourceArgs } from "./resolve";
import { fleetError } from "../model/errors";
import { planProxy, type ProxyArgs } from "../model/proxy";

/**
 * A service's plan: what it will deploy (release id, commit, resolved source, install hash, pin)
 * and the rest of its provider inputs with their defaults. Decided here, once, from plain values:
 * the Service component wraps these functions around its Outputs, index.ts keys the pre-deploy
 * backups by `planRelease`, and the real-server tests build their inputs with `planService`.
 * Git and path sources are resolved on the deploying machine (git, the file tree), so that
 * `pulumi preview` already knows the release.
 */

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

/** A rollback pin (`fleet:pins`, written by `npm run rollback`). */
export interface Pin {
  readonly releaseId: string;
  readonly commit: string;
}

/**
 * What decides a service's release. `Image` is what an image source holds: the built artifact
 * here, a `pulumi.Input` of it in the Service component (which resolves it before planning).
 */
export interface ReleaseArgs<Image = ImageArtifact> {
  /** The service's name on its host (errors name `services.<name>`). */
  readonly name: string;
  /**
   * A git repository at a ref (default HEAD; a dirty tree is refused unless allowDirty), a
   * directory, or a built docker image (a GoldenImage's `artifact`).
   */
  readonly source: SourceArgs | { readonly image: Image };
  /** Dependencies, installed only when the `when` files change; kept in `deps/<hash>/`. */
  readonly install?: { readonly run: string; readonly when?: readonly string[] };
  /** Build command, run inside each new release. Default: none. */
  readonly build?: string;
  /**
   * Rollback pin: deploy exactly this release, which the host must still have; a git source
   * deploys the pinned commit, an image the pinned build. Default: none (the source's release).
   */
  readonly pin?: Pin;
}

/** What a service is about to deploy. Its `releaseId` is also what its pre-deploy backups are keyed by. */
export interface ReleasePlan {
  readonly releaseId: string;
  /** The commit (git), or the release id (directories, images): FLEET_COMMIT, REVISION. */
  readonly commit: string;
  readonly source: ResolvedSource;
  readonly install?: InstallSpec;
  /** A rollback pin: the provider switches back to a retained release and never uploads one. */
  readonly pinned?: true;
}

/** The settings of a service that do not depend on its host, its secrets or its image. */
export interface SettingsArgs<Image = ImageArtifact> extends ReleaseArgs<Image> {
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
  /** The health gate a new release must pass before it counts as deployed. */
  readonly health: HealthArgs;
  /** Releases kept on the host, counting the serving one. Default 5. */
  readonly keepReleases?: number;
  /** fleet's root directory on the host. Default "/srv/fleet". */
  readonly root?: string;
  /** The account the service runs as. Default: the connection's user. */
  readonly runAs?: string;
  /** The systemd unit name. Default: the service name. */
  readonly unitName?: string;
  /** Break a deploy lock whose holder process is gone. Default false. */
  readonly breakStaleLock?: boolean;
  /** Limit for any single remote step (upload, install, build). Default "10m". */
  readonly stepTimeout?: string;
  /** Refuse to deploy when the host has less free disk than this under root, in MiB. Default 512. */
  readonly minFreeDiskMb?: number;
  /**
   * Zero-downtime releases behind the host's proxy (the host needs `bootstrap.proxy`): each
   * release starts beside the old one on a port passed as `PORT`, and the proxy switches once
   * its gate passed (docs/zero-downtime.md). Default: none (restart in place).
   */
  readonly proxy?: ProxyArgs;
  /**
   * Files and directories that outlive releases: kept in `<root>/<name>/shared/` and linked into
   * every release at the same path before its build. The first deploy creates each directory
   * empty and each file with its content here ("" by default); no deploy rewrites them, and
   * retention, rollback and delete leave them. Not for image sources. Default: none.
   */
  readonly shared?: {
    readonly dirs?: readonly string[];
    readonly files?: Readonly<Record<string, string>>;
    /** An image source: the container directory they are mounted under (required there). */
    readonly containerDir?: string;
  };
  /** `pulumi destroy` removes the shared files and directories too. Default false: they are kept. */
  readonly deleteSharedOnDestroy?: boolean;
  /**
   * Commands run on the host as the service's user, with its environment and FLEET_SERVICE,
   * FLEET_HOST, FLEET_RELEASE, FLEET_PREVIOUS_RELEASE, FLEET_COMMIT, holding the deploy lock:
   * `preSwitch` (a failure means no switch), `postDeploy` (a failure warns; with
   * `{ run, rollbackOnFailure: true }` it rolls back), `postRollback` (after a rollback; warns).
   * Default: none.
   */
  readonly hooks?: {
    readonly preSwitch?: string;
    readonly postDeploy?: string | { readonly run: string; readonly rollbackOnFailure?: boolean };
    readonly postRollback?: string;
  };
}

/** The provider inputs `planSettings` fills: plain, with every default applied. */
export type ServiceSettings = Pick<
  ServiceSpec,
  | "name"
  | "root"
  | "unitName"
  | "build"
  | "migrate"
  | "env"
  | "health"
  | "keepReleases"
  | "breakStaleLock"
  | "stepTimeoutMs"
  | "minFreeDiskMb"
  | "proxy"
  | "shared"
  | "deleteSharedOnDestroy"
  | "hooks"
>;

/** What only the host (its connection) and the secrets (their keys) tell. */
export interface HostFacts {
  /** The connection's user: whom the service runs as unless `runAs` says otherwise. */
  readonly connectionUser: string;
  /** The names of the service's secret environment variables (their values stay out of the plan). */
  readonly secretEnvKeys: readonly string[];
}

/** A service's provider inputs except the connection and the secrets (connection, secretEnv, notify, restore point). */
export type ServicePlan = Omit<ServiceSpec, "connection" | "host" | "secretEnv" | "notify" | "restoreOnRollback">;

const label = (name: string) => `services.${name}`;

/** fleet's root directory on a host when a service gives none. */
const DEFAULT_ROOT = "/srv/fleet";

/** Resolves the health arguments into the provider's form (durations in ms, defaults filled). */
export function healthSpec(args: HealthArgs, at: string): HealthSpec {
  return {
    url: args.url,
    expectStatus: args.expectStatus ?? 200,
    ...(args.bodyContains !== undefined ? { bodyContains: args.bodyContains } : {}),
    ...(args.version ? { version: { url: args.version.url, field: args.version.field ?? "commit" } } : {}),
    timeoutMs: parseDuration(args.timeout ?? "30s", `${at}.health.timeout`),
    intervalMs: parseDuration(args.interval ?? "100ms", `${at}.health.interval`),
  };
}

/** What a source cannot go with; checked as soon as the arguments are known. */
function sourceProblem(args: ReleaseArgs<unknown> & { readonly start?: string }): string | undefined {
  const at = label(args.name);
  if ("image" in args.source) return args.install || args.build ? `${at}: ${IMAGE_BUILDS_ITSELF}` : undefined;
  return args.start === undefined ? `${at}.start: ${START_REQUIRED}` : undefined;
}

/** The hint of a service field this module refuses: the message names the field. */
const FIX_THE_FIELD = "Fix the field named above in the stack's config and run again.";

/** The build of an image that a pin names: the current one, or one its history still keeps. */
function pinnedBuild(image: ImageArtifact, pin: Pin, name: string): string {
  const builds = [...new Set([image.imageId, ...image.history])];
  const build = builds.find((id) => imageReleaseId(id) === pin.releaseId);
  if (!build)
    throw fleetError(
      "config",
      `pins.${name}: release ${pin.releaseId} is none of the image's kept builds (${builds.map(imageReleaseId).join(", ")})`,
      "Rebuild it from source instead, or unpin (npm run rollback -- --unpin).",
    );
  return build;
}

/**
 * The release a service will deploy: from its source, or exactly the pinned one. A pinned git
 * source resolves the pinned commit (its install hash is that commit's), a pinned image its
 * pinned build; a pinned directory keeps the directory's current files (they are not uploaded).
 */
export function planRelease(args: ReleaseArgs): ReleasePlan {
  const at = label(args.name);
  const pinned = args.pin ? ({ pinned: true } as const) : {};
  if ("image" in args.source) {
    const problem = sourceProblem(args);
    if (problem) throw fleetError("config", problem, FIX_THE_FIELD);
    const image = args.source.image;
    const imageId = args.pin ? pinnedBuild(image, args.pin, args.name) : image.imageId;
    const releaseId = imageReleaseId(imageId);
    return { releaseId, commit: releaseId, source: { kind: "image", ...image, imageId }, ...pinned };
  }
  const source =
    args.pin && "git" in args.source ? { ...args.source, ref: args.pin.commit, allowDirty: true } : args.source;
  const release = resolveRelease(source, args.build, at);
  const when = args.install?.when ?? [];
  return {
    releaseId: args.pin?.releaseId ?? release.releaseId,
    commit: args.pin?.commit ?? release.commit,
    source: release.source,
    ...(args.install
      ? { install: { run: args.install.run, when: [...when], hash: resolveDepsHash(release, when, args.install.run) } }
      : {}),
    ...pinned,
  };
}

/** Every setting that is known before the host and the image are, with its default. */
export function planSettings(args: SettingsArgs<unknown>): ServiceSettings {
  const at = label(args.name);
  const problem = sourceProblem(args);
  if (problem) throw fleetError("config", problem, FIX_THE_FIELD);
  return {
    name: args.name,
    root: args.root ?? DEFAULT_ROOT,
    unitName: args.unitName ?? args.name,
    ...(args.build ? { build: args.build } : {}),
    ...(args.migrate ? { migrate: args.migrate } : {}),
    env: { ...(args.env ?? {}) },
    health: healthSpec(args.health, at),
    keepReleases: args.keepReleases ?? 5,
    breakStaleLock: args.breakStaleLock ?? false,
    stepTimeoutMs: parseDuration(args.stepTimeout ?? "10m", `${at}.stepTimeout`),
    minFreeDiskMb: args.minFreeDiskMb ?? 512,
    ...(args.proxy
      ? { proxy: planProxy(args.proxy, parseDuration(args.proxy.drainTimeout ?? "30s", `${at}.proxy.drainTimeout`)) }
      : {}),
    ...sharedSettings(args),
    ...(args.hooks ? { hooks: hooksSpec(args.hooks) } : {}),
  };
}

/** The shared entries with their defaults; none at all when nothing is shared. */
function sharedSettings(args: Pick<SettingsArgs<unknown>, "shared" | "deleteSharedOnDestroy">) {
  const dirs = [...(args.shared?.dirs ?? [])];
  const files = { ...(args.shared?.files ?? {}) };
  const containerDir = args.shared?.containerDir;
  return {
    ...(dirs.length || Object.keys(files).length
      ? { shared: { dirs, files, ...(containerDir !== undefined ? { containerDir } : {}) } }
      : {}),
    ...(args.deleteSharedOnDestroy ? { deleteSharedOnDestroy: true } : {}),
  };
}

/** The hooks in the provider's form: postDeploy as `{ run, rollbackOnFailure }`. */
function hooksSpec(hooks: NonNullable<SettingsArgs<unknown>["hooks"]>): HooksSpec {
  const post = hooks.postDeploy;
  return {
    ...(hooks.preSwitch !== undefined ? { preSwitch: hooks.preSwitch } : {}),
    ...(post !== undefined
      ? {
          postDeploy:
            typeof post === "string"
              ? { run: post, rollbackOnFailure: false }
              : { run: post.run, rollbackOnFailure: post.rollbackOnFailure ?? false },
        }
      : {}),
    ...(hooks.postRollback !== undefined ? { postRollback: hooks.postRollback } : {}),
  };
}

/** The command systemd runs: the given one, or (image) `docker run` of the release's image with the service's environment. */
export function startCommand(
  args: Pick<SettingsArgs<unknown>, "name" | "start" | "env" | "unitName" | "proxy" | "shared" | "root">,
  source: ResolvedSource,
  secretEnvKeys: readonly string[],
): string {
  if (args.start !== undefined) return args.start;
  if (source.kind !== "image")
    throw fleetError("config", `${label(args.name)}.start: ${START_REQUIRED}`, FIX_THE_FIELD);
  const envKeys = [...Object.keys(args.env ?? {}), ...secretEnvKeys, "FLEET_RELEASE", "FLEET_COMMIT"];
  return dockerRunCommand({
    container: args.unitName ?? args.name,
    image: source.imageId,
    envKeys,
    ...(args.proxy ? { instance: true } : {}),
    ...(args.shared?.containerDir !== undefined ? { mounts: sharedMounts(args, args.shared.containerDir) } : {}),
  });
}

/** An image service's shared entries as bind mounts: `shared/<p>` on the host at `<containerDir>/<p>`. */
function sharedMounts(
  args: Pick<SettingsArgs<unknown>, "name" | "unitName" | "shared" | "root">,
  containerDir: string,
) {
  const layout = serviceLayout(args.root ?? DEFAULT_ROOT, args.name, args.unitName ?? args.name);
  const dir = containerDir.replace(/\/+$/, "");
  return [...(args.shared?.dirs ?? []), ...Object.keys(args.shared?.files ?? {})].map((p) => ({
    host: `${layout.shared}/${p}`,
    container: `${dir}/${p}`,
  }));
}

/** The unit file, rendered (an input, so that `pulumi preview --diff` shows its lines). */
export function unitFile(
  settings: Pick<ServiceSettings, "name" | "root" | "unitName" | "proxy">,
  runAs: string,
  start: string,
): string {
  const layout = serviceLayout(settings.root, settings.name, settings.unitName);
  return renderUnit({ name: settings.name, runAs, start, layout, instance: settings.proxy !== undefined });
}

/** A service's whole plan from plain values: what the Service component registers, but for the secrets. */
export function planService(args: SettingsArgs, host: HostFacts): ServicePlan {
  const settings = planSettings(args);
  const release = planRelease(args);
  const start = startCommand(args, release.source, host.secretEnvKeys);
  const runAs = args.runAs ?? host.connectionUser;
  return { ...settings, runAs, ...release, start, unit: unitFile(settings, runAs, start) };
}
