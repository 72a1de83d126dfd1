import * as pulumi from "@pulumi/pulumi";
import { ShippedResource } from "./shipped-resource";
import { imageContentHash } from "../decisions/image-hash";
import { parseDuration } from "../model/duration";
import { excludePatternProblem } from "../model/exclude-pattern";
import { defaultImageRepository } from "../model/rules/image";
import { commitOf, provisionRunList, readImageContext } from "../providers/image/inputs";
import type { DockerImageSpec, ImageArtifact } from "../providers/image/model";
import type { HcloudImageSpec } from "../providers/image/hcloud-model";
import type { SshConnection } from "../transport/connection";
import { Host } from "./host";
import { CHILD_SUFFIXES, childName, DYNAMIC_TYPES, TOKENS } from "./tokens";
import { fleetError } from "../model/errors";
import { refusing } from "./refuse";

export interface DockerValidateArgs {
  /** Probed from the deploying machine while the new image runs once, e.g. "http://127.0.0.1:18650/health". */
  readonly url: string;
  /** Default 200. */
  readonly expectStatus?: number;
  /** A substring the body must contain. Default: not checked. */
  readonly bodyContains?: string;
  /** Environment of the validation run (e.g. the port to listen on). Default {}. */
  readonly env?: Readonly<Record<string, string>>;
  /** Default "30s". */
  readonly timeout?: string;
  /** Default "100ms". */
  readonly interval?: string;
}

/** A container image, built by the Docker CLI from a context directory. */
export interface DockerGoldenImageArgs {
  readonly kind: "docker";
  /** The build context. Every file in it (minus `exclude`) is part of the content hash. */
  readonly context: string;
  /** Relative to the context. Default "Dockerfile". */
  readonly dockerfile?: string;
  /** Part of the content hash. Visible in the image history: not for secrets. Default {}. */
  readonly buildArgs?: Readonly<Record<string, string>>;
  /** What is left out of the context, besides ".git": a path source's exclude patterns (source/files.ts). Default []. */
  readonly exclude?: readonly string[];
  /** Repository of the tags. Default "fleet/<name>". */
  readonly repository?: string;
  /** The commit to tag the image with. Default: the last commit that changed the context. */
  readonly commit?: string;
  /** The build engine (DOCKER_HOST, e.g. "ssh://builder"). Default: the local CLI's engine. */
  readonly dockerHost?: string;
  /** The new image runs once and must pass this before it becomes active. */
  readonly validate: DockerValidateArgs;
  /** Hosts that get the image (docker save | ssh | docker load): a Host, or a connection. Default none. */
  readonly hosts?: readonly (Host | pulumi.Input<SshConnection>)[];
  /** Images kept on the build engine and on each host, counting the active one. Default 3. */
  readonly keep?: number;
  /** Limit for any one step (build, load). Default "10m". */
  readonly stepTimeout?: string;
}

/** A Hetzner Cloud snapshot, built like Packer's hcloud builder. */
export interface HcloudGoldenImageArgs {
  readonly kind: "hcloud";
  /** The image the builder boots, e.g. "debian-12". */
  readonly baseImage: string;
  /** e.g. "cx22". */
  readonly serverType: string;
  /** e.g. "fsn1". */
  readonly location: string;
  readonly provision: {
    /** Uploaded to the builder; every file in it is part of the content hash. */
    readonly dir: string;
    /** Scripts to run in order, relative to dir. Default: the top-level executables, by name. */
    readonly run?: readonly string[];
    /** Exported to the scripts; part of the content hash. Default {}. */
    readonly env?: Readonly<Record<string, string>>;
  };
  /** Run over SSH on a throwaway server booted from the new snapshot; exit 0 means valid. */
  readonly validate: { readonly check: string; readonly timeout?: string };
  /** Snapshots kept, counting the active one. Default 3. */
  readonly keep?: number;
  /** Hetzner Cloud API token. Default: the `hcloud:token` config (secret). */
  readonly token?: pulumi.Input<string>;
  /** Extra labels on the snapshot. Default {}. */
  readonly labels?: Readonly<Record<string, string>>;
  /** Limit for the whole provisioning. Default "30m". */
  readonly stepTimeout?: string;
}

export type GoldenImageArgs = DockerGoldenImageArgs | HcloudGoldenImageArgs;

type Inputs<T> = { [K in keyof T]: pulumi.Input<T[K]> };

/** The dynamic resource behind a docker GoldenImage (see providers/image/docker-provider.ts). */
class DockerImage extends ShippedResource {
  declare readonly imageId: pulumi.Output<string>;
  declare readonly ref: pulumi.Output<string>;
  declare readonly tags: pulumi.Output<string[]>;
  declare readonly history: pulumi.Output<string[]>;
  declare readonly previousImageId: pulumi.Output<string>;
  declare readonly contentHash: pulumi.Output<string>;
  declare readonly commit: pulumi.Output<string>;
  constructor(name: string, spec: Inputs<DockerImageSpec>, opts?: pulumi.CustomResourceOptions) {
    const outputs = [
      "imageId",
      "ref",
      "tags",
      "history",
      "previousImageId",
      "built",
      "builtAt",
      "validationMs",
      "shipped",
      "pruned",
    ];
    super(
      "dockerImage",
      DYNAMIC_TYPES.dockerImage,
      name,
      { ...spec, ...Object.fromEntries(outputs.map((k) => [k, undefined])) },
      { ...opts, additionalSecretOutputs: ["hostConnections"] },
    );
  }
}

/** The dynamic resource behind an hcloud GoldenImage (see providers/image/hcloud-provider.ts). */
class HcloudImage extends ShippedResource {
  declare readonly imageId: pulumi.Output<string>;
  declare readonly previousImageId: pulumi.Output<string>;
  declare readonly contentHash: pulumi.Output<string>;
  declare readonly commit: pulumi.Output<string>;
  constructor(name: string, spec: Inputs<HcloudImageSpec>, opts?: pulumi.CustomResourceOptions) {
    super(
      "hcloudImage",
      DYNAMIC_TYPES.hcloudImage,
      name,
      {
        ...spec,
        imageId: undefined,
        previousImageId: undefined,
        history: undefined,
        builtAt: undefined,
        pruned: undefined,
      },
      { ...opts, additionalSecretOutputs: ["token"] },
    );
  }
}

function connectionOf(h: Host | pulumi.Input<SshConnection>): pulumi.Output<SshConnection> {
  return h instanceof Host ? h.connection : pulumi.output(h);
}

/**
 * A golden image, built only when its inputs change, validated before it becomes active, activated
 * in one update (consumers see `imageId` change once, after validation and shipping), with the
 * previous images kept by policy.
 *
 * - `kind: "docker"`: the Docker CLI builds the context (tags `<repository>:<hash16>` and
 *   `<repository>:<commit12>`), runs the new image once against `validate`, ships it to `hosts`
 *   with `docker save | docker load` over fleet's SSH connection, and prunes old images on the
 *   build engine and every host (never one in use, named by a unit or a service's record, active
 *   or the rollback target). The Docker CLI rather than `@pulumi/docker`'s `Image`: that one
 *   builds and pushes to a registry, but cannot validate before the id changes, cannot ship
 *   without a registry, and has its own idea of when to rebuild; fleet needs all three, and a
 *   dynamic provider driving the CLI can (and runs here, where no provider plugin can).
 * - `kind: "hcloud"`: Packer's flow against the Hetzner Cloud API (builder from `baseImage` with a
 *   temporary SSH key, provision over SSH, power off, snapshot labelled with the hash, builder and
 *   key deleted), then a throwaway server from the snapshot must pass `validate.check`. A `Host`
 *   of kind hcloud takes `imageId` as its `image`. One dynamic resource rather than `hcloud.Server`
 *   + `hcloud.SshKey` + `hcloud.Snapshot`: a declared resource lives until the program stops
 *   declaring it (the next update), so a builder and its key could not be deleted in the update
 *   that made the snapshot, and validation could not gate the snapshot id.
 *
 * Running a docker image as a Service (the `source: { image }` integration): before the switch,
 * `ensureImageOnHost(conn, { imageId, tags, dockerHost })` (providers/image/host-images.ts) makes
 * sure the host has it; `dockerRunCommand({ container: unitName, image: imageId, envKeys })`
 * (commands/image.ts) is the unit's start command; after the deploy, `recordReleaseImagesScript`
 * records the images of the retained releases (their `IMAGE` files) and `pruneImages(hostPlace(
 * conn), { name, keep, history, protect })` applies retention. `artifact` carries what they need.
 */
export class GoldenImage extends pulumi.ComponentResource {
  /** docker: the image id (`sha256:…`); hcloud: the snapshot id. */
  readonly imageId: pulumi.Output<string>;
  /** docker: `<repository>:<hash16>`; hcloud: the snapshot id. */
  readonly ref: pulumi.Output<string>;
  /** The content hash of the inputs (files, build args, settings). Known at preview. */
  readonly contentHash: pulumi.Output<string>;
  /** The commit the image is tagged with ("" when unknown). */
  readonly commit: pulumi.Output<string>;
  /** The image active before this one: the rollback target. */
  readonly previousImageId: pulumi.Output<string>;
  /** docker only: what a Service running this image needs (id, tags, build engine, retention). */
  readonly artifact: pulumi.Output<ImageArtifact | undefined>;

  constructor(name: string, args: GoldenImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super(TOKENS.goldenImage, name, {}, opts);
    const label = `images.${name}`;
    if (args.kind === "hcloud") {
      const image = hcloudImage(this, name, args, label);
      this.imageId = image.imageId;
      this.ref = image.imageId;
      this.previousImageId = image.previousImageId;
      this.contentHash = image.contentHash;
      this.commit = image.commit;
      this.artifact = pulumi.output(undefined);
    } else {
      const { resource, spec } = dockerImage(this, name, args, label);
      this.imageId = resource.imageId;
      this.ref = resource.ref;
      this.previousImageId = resource.previousImageId;
      this.contentHash = resource.contentHash;
      this.commit = resource.commit;
      this.artifact = pulumi
        .all([resource.imageId, resource.tags, resource.history])
        .apply(([imageId, tags, history]) => ({
          name: spec.name,
          imageId,
          tags,
          dockerHost: spec.dockerHost,
          keep: spec.keep,
          history,
        }));
    }
    this.registerOutputs({
      imageId: this.imageId,
      ref: this.ref,
      contentHash: this.contentHash,
      commit: this.commit,
      previousImageId: this.previousImageId,
    });
  }
}

/**
 * The docker kind's provider inputs except the hosts, read from the context now (on the deploying
 * machine, while the program runs), so that preview already knows the hash and the files.
 */
export function dockerImageSpec(
  name: string,
  args: DockerGoldenImageArgs,
  label = `images.${name}`,
): Omit<DockerImageSpec, "hostConnections" | "hostAddresses"> {
  const dockerfile = args.dockerfile ?? "Dockerfile";
  const buildArgs = { ...(args.buildArgs ?? {}) };
  // The context is read with these here, before any provider check: this is their only gate.
  (args.exclude ?? []).forEach((pattern, i) => {
    const problem = excludePatternProblem(pattern);
    if (problem)
      throw fleetError(
        "config",
        `${label}.exclude.${i}: ${problem}`,
        `Fix ${label}.exclude.${i} in the stack's config.`,
      );
  });
  const ctx = readImageContext(args.context, args.exclude ?? [], `${label}.context`);
  if (!(dockerfile in ctx.manifest))
    throw fleetError(
      "config",
      `${label}.dockerfile: ${dockerfile} is not in ${ctx.dir}`,
      `Name a file of the context in ${label}.dockerfile, or add ${dockerfile} to ${ctx.dir}.`,
    );
  return {
    name,
    repository: args.repository ?? defaultImageRepository(name),
    contextDir: ctx.dir,
    exclude: ctx.exclude,
    dockerfile,
    buildArgs,
    manifest: ctx.manifest,
    contentHash: imageContentHash({ kind: "docker", manifest: ctx.manifest, buildArgs, settings: { dockerfile } }),
    commit: args.commit ?? commitOf(ctx.dir),
    dockerHost: args.dockerHost ?? "",
    validate: {
      url: args.validate.url,
      expectStatus: args.validate.expectStatus ?? 200,
      ...(args.validate.bodyContains !== undefined ? { bodyContains: args.validate.bodyContains } : {}),
      env: { ...(args.validate.env ?? {}) },
      timeoutMs: parseDuration(args.validate.timeout ?? "30s", `${label}.validate.timeout`),
      intervalMs: parseDuration(args.validate.interval ?? "100ms", `${label}.validate.interval`),
    },
    keep: args.keep ?? 3,
    stepTimeoutMs: parseDuration(args.stepTimeout ?? "10m", `${label}.stepTimeout`),
  };
}

function dockerImage(parent: GoldenImage, name: string, args: DockerGoldenImageArgs, label: string) {
  const spec = refusing(parent, () => dockerImageSpec(name, args, label));
  const hosts = (args.hosts ?? []).map(connectionOf);
  const resource = new DockerImage(
    childName(name, CHILD_SUFFIXES.goldenImage.docker),
    {
      ...spec,
      hostConnections: pulumi.secret(pulumi.all(hosts)),
      hostAddresses: pulumi.unsecret(pulumi.all(hosts).apply((cs) => cs.map((c) => c.host))),
    },
    { parent, dependsOn: (args.hosts ?? []).filter((h): h is Host => h instanceof Host) },
  );
  return { resource, spec };
}

/**
 * The hcloud kind's provider inputs except the token: the provision directory, its scripts in
 * order, the base, read now (on the deploying machine, while the program runs), like dockerImageSpec.
 */
export function hcloudImageSpec(
  name: string,
  args: HcloudGoldenImageArgs,
  label = `images.${name}`,
): Omit<HcloudImageSpec, "token"> {
  const env = { ...(args.provision.env ?? {}) };
  const ctx = readImageContext(args.provision.dir, [], `${label}.provision.dir`);
  const run = provisionRunList(ctx.dir, ctx.manifest, args.provision.run, `${label}.provision`);
  // The base image and the scripts' order shape the image as much as the files do.
  const settings = {
    baseImage: args.baseImage,
    serverType: args.serverType,
    location: args.location,
    run: run.join("\n"),
  };
  return {
    name,
    baseImage: args.baseImage,
    serverType: args.serverType,
    location: args.location,
    provisionDir: ctx.dir,
    run,
    env,
    manifest: ctx.manifest,
    contentHash: imageContentHash({ kind: "hcloud", manifest: ctx.manifest, buildArgs: env, settings }),
    commit: commitOf(ctx.dir),
    labels: { ...(args.labels ?? {}) },
    check: args.validate.check,
    checkTimeoutMs: parseDuration(args.validate.timeout ?? "5m", `${label}.validate.timeout`),
    keep: args.keep ?? 3,
    stepTimeoutMs: parseDuration(args.stepTimeout ?? "30m", `${label}.stepTimeout`),
    apiUrl: "https://api.hetzner.cloud/v1",
    sshPort: 22,
  };
}

function hcloudImage(parent: GoldenImage, name: string, args: HcloudGoldenImageArgs, label: string): HcloudImage {
  return new HcloudImage(
    childName(name, CHILD_SUFFIXES.goldenImage.hcloud),
    {
      ...hcloudImageSpec(name, args, label),
      token: pulumi.secret(args.token ?? new pulumi.Config("hcloud").requireSecret("token")),
    },
    { parent },
  );
}
