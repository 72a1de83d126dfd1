import type { SshConnection } from "./connection";
import type { NotifyTarget } from "./notify";
import type { RestorePoint } from "./backup";
import type { ImageArtifact } from "./image";
import type { ProxySpec } from "./proxy";

/** Where a release's files come from, resolved by the program before the provider runs. */
export type ResolvedSource =
  /** A commit of a local git repository, packed with `git archive`. */
  | { readonly kind: "git"; readonly repo: string; readonly commit: string }
  /** A local directory, packed with tar; `exclude` holds its patterns (source/files.ts), defaults included. */
  | { readonly kind: "path"; readonly path: string; readonly exclude: readonly string[] }
  /** A GoldenImage (docker): the release is the image, loaded into the host's engine. */
  | ({ readonly kind: "image" } & ImageArtifact);

export interface InstallSpec {
  /** Shell command run once per dependency set, in `deps/<hash>/`. */
  readonly run: string;
  /** Files (relative to the release) whose content keys the dependency set. */
  readonly when: readonly string[];
  /** Hash of the `when` files and `run`: the dependency set's directory name. */
  readonly hash: string;
}

export interface HealthSpec {
  /** URL probed from the host itself (curl on the host). */
  readonly url: string;
  /** Expected HTTP status. Default 200. */
  readonly expectStatus: number;
  /** Substring the body must contain, if set. */
  readonly bodyContains?: string;
  /** Endpoint whose JSON `field` must equal the release's commit, if set. */
  readonly version?: { readonly url: string; readonly field: string };
  /** How long the new release may take to become healthy, in ms. */
  readonly timeoutMs: number;
  /** Delay between probes, in ms. */
  readonly intervalMs: number;
}

/**
 * Files and directories that outlive releases (Capistrano's linked_dirs/linked_files): kept in
 * `<root>/<service>/shared/<path>` and linked into every release at `<path>` before its build.
 */
export interface SharedSpec {
  /** Directories, created empty by the first deploy. */
  readonly dirs: readonly string[];
  /** Files, each created by the first deploy with this content (later deploys never rewrite it). */
  readonly files: Readonly<Record<string, string>>;
  /**
   * An image source: the container directory the entries are mounted under (`-v`, by the
   * default `docker run`), e.g. the image's WORKDIR. Only for images; required there.
   */
  readonly containerDir?: string;
}

/** A post-deploy hook: a failure only warns, unless `rollbackOnFailure`. */
export interface PostDeployHook {
  readonly run: string;
  readonly rollbackOnFailure: boolean;
}

/**
 * Commands run on the host around a deploy, as the service's user with its environment plus
 * FLEET_SERVICE, FLEET_HOST, FLEET_RELEASE, FLEET_PREVIOUS_RELEASE and FLEET_COMMIT, holding the
 * deploy lock.
 */
export interface HooksSpec {
  /** In the new release, after build and migrate, before the switch: a failure means no switch. */
  readonly preSwitch?: string;
  /** In the new release once it serves and passed its gate. */
  readonly postDeploy?: PostDeployHook;
  /** In the restored release, after a rollback put it back (automatic, or `npm run rollback`); only warns. */
  readonly postRollback?: string;
}

/** The dynamic provider's inputs for one service on one host. Plain data only. */
export interface ServiceSpec {
  readonly name: string;
  readonly connection: SshConnection;
  /** The host's address in plain text (the connection is secret): preview names the host. */
  readonly host: string;
  /** fleet's root directory on the host. */
  readonly root: string;
  /** The systemd unit name (without `.service`). */
  readonly unitName: string;
  /** The account the service runs as. */
  readonly runAs: string;
  readonly releaseId: string;
  /** The deployed commit (git sources) or the release id (directory sources). */
  readonly commit: string;
  readonly source: ResolvedSource;
  readonly install?: InstallSpec;
  readonly build?: string;
  /** Database migrations, run in a new release with its environment, after the backup and before the switch. */
  readonly migrate?: string;
  readonly start: string;
  readonly env: Readonly<Record<string, string>>;
  readonly secretEnv: Readonly<Record<string, string>>;
  /** The rendered unit file: an input so that `pulumi preview --diff` shows its lines. */
  readonly unit: string;
  readonly health: HealthSpec;
  readonly keepReleases: number;
  /** Break a lock whose holder process is provably gone. */
  readonly breakStaleLock: boolean;
  /** Per remote step timeout, in ms. */
  readonly stepTimeoutMs: number;
  /** A rollback pin: deploy exactly this retained release, never upload or build it. */
  readonly pinned?: boolean;
  /** Restore this backup when an automatic rollback follows a migration (secret). */
  readonly restoreOnRollback?: RestorePoint;
  /** Where outcomes are announced (secret: URLs carry tokens). */
  readonly notify?: readonly NotifyTarget[];
  /** Refuse to deploy when the root's file system has less free space than this, in MiB. */
  readonly minFreeDiskMb: number;
  /**
   * Behind the host's proxy (zero-downtime releases): each release runs as its own instance on a
   * port fleet allocates (`PORT`), and the proxy switches to it once its gate passed. The health
   * URL's path is probed on that port. Absent: the release is restarted in place.
   */
  readonly proxy?: ProxySpec;
  /** Files and directories that outlive releases. Absent: none. */
  readonly shared?: SharedSpec;
  /** `pulumi destroy` also removes the shared files and directories. Default false: they are kept. */
  readonly deleteSharedOnDestroy?: boolean;
  readonly hooks?: HooksSpec;
  /** The host's name in the stack's config (FLEET_HOST). Absent: its address. */
  readonly hostName?: string;
}

/** What the provider records after a deploy (echoes the spec, plus facts). */
export interface ServiceState extends ServiceSpec {
  readonly path: string;
  readonly deployedAt: string;
  readonly depsReinstalled: boolean;
  readonly previousReleaseId: string;
  readonly retainedReleases: string[];
}
