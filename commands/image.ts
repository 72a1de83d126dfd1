import { ENV_KEY_PATTERN } from "../model/rules/env";
import { DOCKER_REPOSITORY_PATTERN } from "../model/rules/image";
import { NAME_PATTERN } from "../model/rules/names";
import { shq, writeFileAtomic } from "./quote";

/**
 * Pure builders for container images: build and save on the build engine (the deploying
 * machine's Docker CLI, or DOCKER_HOST), and load, run and prune on hosts. Scripts print facts
 * as `key=value` lines on stdout and name their phase on stderr (`fleet-phase: load`), like
 * commands/service.ts. Every value is quoted through commands/quote.ts.
 */

/** Labels fleet puts on every image it builds; retention only ever looks at images carrying them. */
export const LABELS = {
  image: "io.fleet.image",
  hash: "io.fleet.hash",
  commit: "io.fleet.commit",
} as const;

/**
 * Host-wide record of the images that deployments still need: one file per owner (a service),
 * image ids one per line. Retention on the host never deletes an image named here, so a service
 * can roll back to any release it retains, even when its image is out of the GoldenImage's policy.
 */
export const IMAGE_REFS_DIR = "/var/lib/fleet/images";

/** Exit code of a host script when the host has no `docker` CLI. */
export const EXIT_NO_DOCKER = 68;

const PHASE = `phase() { printf 'fleet-phase: %s\\n' "$1" >&2; }`;
const NEED_DOCKER = `command -v docker >/dev/null 2>&1 || { echo "docker is not installed on this host (fleet runs images with the docker CLI)" >&2; exit ${EXIT_NO_DOCKER}; }`;
const IMAGE_ID = /^sha256:[0-9a-f]{64}$/;

/** Refuses anything but a full image id: scripts that delete or run images take ids only. */
export function imageId(id: string): string {
  if (!IMAGE_ID.test(id)) throw new Error(`not a full image id (sha256:<64 hex>): ${JSON.stringify(id)}`);
  return id;
}

/** A Docker tag `repository:tag`, checked against Docker's grammar (lowercase repository). */
export function imageTag(repository: string, tag: string): string {
  if (!DOCKER_REPOSITORY_PATTERN.test(repository))
    throw new Error(`not a Docker repository name (lowercase letters, digits, '.', '_', '-', '/'): ${repository}`);
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag)) throw new Error(`not a Docker tag: ${tag}`);
  return `${repository}:${tag}`;
}

export interface BuildArgs {
  /** The Dockerfile, relative to the context. */
  readonly dockerfile: string;
  /** `repository:tag`s, the content-hash tag first. */
  readonly tags: readonly string[];
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
}

/**
 * `sh -c` script that builds the context tar it reads on stdin (`docker build -`), sends the
 * build log to stderr (so a failure carries it), and prints `image_id=sha256:…`.
 * Build args are visible in `ps` and in the image history: they are not for secrets.
 */
export function dockerBuildScript(args: BuildArgs): string {
  if (args.tags.length === 0) throw new Error("dockerBuildScript needs at least one tag");
  const flags = [
    `-f ${shq(args.dockerfile)}`,
    ...Object.keys(args.buildArgs)
      .sort()
      .map((k) => `--build-arg ${shq(`${k}=${args.buildArgs[k]}`)}`),
    ...Object.keys(args.labels)
      .sort()
      .map((k) => `--label ${shq(`${k}=${args.labels[k]}`)}`),
    ...args.tags.map((t) => `-t ${shq(t)}`),
  ];
  return [
    "set -eu",
    `iid=$(mktemp); trap 'rm -f "$iid"' EXIT`,
    `docker build --iidfile "$iid" ${flags.join(" ")} - >&2`,
    `echo "image_id=$(cat "$iid")"`,
    "",
  ].join("\n");
}

/** Prints `image_id=` (empty when absent) and `hash=` (the content-hash label) of `ref`. */
export function inspectImageScript(ref: string): string {
  const format = `{{.Id}} {{with .Config.Labels}}{{index . ${JSON.stringify(LABELS.hash)}}}{{end}}`;
  return [
    `if out=$(docker image inspect -f ${shq(format)} ${shq(ref)} 2>/dev/null); then`,
    `  echo "image_id=\${out%% *}"; echo "hash=\${out#* }"`,
    `else echo image_id=; fi`,
    "",
  ].join("\n");
}

/** Adds `tag` to an image already on the engine (the commit tag of an image reused by hash). */
export function tagImageCommand(id: string, tag: string): string {
  return `docker tag ${shq(imageId(id))} ${shq(tag)}`;
}

/** Writes the image (all of `tags`, so they survive the trip) as a tar on stdout. */
export function dockerSaveCommand(tags: readonly string[]): string {
  if (tags.length === 0) throw new Error("dockerSaveCommand needs at least one tag");
  return `docker save ${tags.map(shq).join(" ")}`;
}

/** A Docker `--env-file`: `KEY=value` lines taken literally, so values cannot hold newlines. */
export function renderDockerEnvFile(env: Readonly<Record<string, string>>): string {
  return Object.keys(env)
    .sort()
    .map((k) => {
      const v = env[k]!;
      if (!ENV_KEY_PATTERN.test(k)) throw new Error(`not an environment variable name: ${k}`);
      if (/[\n\r\0]/.test(v)) throw new Error(`${k}: a Docker env file cannot hold newlines or NUL bytes`);
      return `${k}=${v}\n`;
    })
    .join("");
}

/** Validation, step 1: start the new image once, detached, with host networking. */
export function validateRunCommand(container: string, image: string, envFile: string): string {
  const c = shq(container);
  return `docker rm -f ${c} >/dev/null 2>&1; docker run -d --name ${c} --network host --env-file ${shq(envFile)} ${shq(imageId(image))}`;
}

/** `<status> <exit code>` of a container (`running 0`, `exited 3`). */
export function containerStateCommand(container: string): string {
  return `docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' ${shq(container)}`;
}

/** The container's last `lines` lines of output, stdout and stderr together. */
export function containerLogsCommand(container: string, lines: number): string {
  return `docker logs --tail ${Math.max(1, Math.floor(lines))} ${shq(container)} 2>&1`;
}

export function removeContainerCommand(container: string): string {
  return `docker rm -f ${shq(container)} >/dev/null 2>&1 || true`;
}

/** Host, step 1: is the image there? Prints `present=1|0`. */
export function imagePresenceScript(id: string): string {
  return [
    "set -eu",
    PHASE,
    "phase inspect",
    NEED_DOCKER,
    `if docker image inspect ${shq(imageId(id))} >/dev/null 2>&1; then echo present=1; else echo present=0; fi`,
    "",
  ].join("\n");
}

/**
 * Host, step 2 (when absent): `docker load` of the `docker save` tar on stdin, then proof that
 * the expected image arrived (`loaded=<id>`); a tar of another image fails the step. Runs via
 * `exec` (stdin is the tar), so non-root users go through `sudo -n` here.
 */
export function imageLoadCommand(id: string, user: string): string {
  const inner = `docker load >&2 && echo "loaded=$(docker image inspect -f '{{.Id}}' ${shq(imageId(id))})"`;
  return user === "root" ? inner : `sudo -n /bin/sh -c ${shq(inner)}`;
}

/**
 * Lists, for retention: `image=<id>` for each image labelled as this GoldenImage's, and what
 * protects images right now: `in_use=<id>` (any container, running or not) and `referenced=<id>`
 * (an image id written in a systemd unit, so a stopped service's image stays for its restart, or
 * recorded under IMAGE_REFS_DIR by a service for the releases it retains).
 */
export function listImagesScript(name: string): string {
  return [
    "set -eu",
    PHASE,
    "phase list",
    NEED_DOCKER,
    `docker images -q --no-trunc --filter ${shq(`label=${LABELS.image}=${name}`)} | sort -u | sed 's/^/image=/'`,
    PROTECTED_IDS,
    `for id in $(protected_ids in_use); do echo "in_use=$id"; done`,
    `for id in $(protected_ids referenced); do echo "referenced=$id"; done`,
    "",
  ].join("\n");
}

/** Shell function: image ids in use by containers, or named in systemd units and IMAGE_REFS_DIR. */
const PROTECTED_IDS = [
  `protected_ids() {`,
  `  if [ "$1" = in_use ]; then for c in $(docker ps -aq --no-trunc); do docker inspect -f '{{.Image}}' "$c" 2>/dev/null || true; done | sort -u`,
  `  else cat /etc/systemd/system/*.service ${IMAGE_REFS_DIR}/* 2>/dev/null | grep -oE 'sha256:[0-9a-f]{64}' | sort -u || true; fi`,
  `}`,
].join("\n");

/**
 * Records which images `owner` (a service) still needs on this host: its serving release's and
 * every retained release's. Written after each deploy; an empty list removes the record.
 */
export function recordImageRefsScript(owner: string, ids: readonly string[]): string {
  if (!NAME_PATTERN.test(owner)) throw new Error(`not an owner name: ${owner}`);
  const file = `${IMAGE_REFS_DIR}/${owner}`;
  if (ids.length === 0) return `rm -f ${shq(file)}\n`;
  const content = [...new Set(ids.map(imageId))].join("\n") + "\n";
  return [`mkdir -p ${IMAGE_REFS_DIR}`, writeFileAtomic(file, content, "644"), ""].join("\n");
}

/**
 * Deletes the images retention chose, each only if, at this moment, it is not protected (the
 * caller's list, a container using it, a unit naming it): the list step and this one are
 * separate round trips, and a deploy may have started using an image in between. Prints
 * `deleted=<id>` or `skipped=<id> <why>`. `-f` removes an image under all its tags at once; it
 * never removes one a running container uses.
 */
export function removeImagesScript(ids: readonly string[], protect: readonly string[]): string {
  const wanted = ids.map(imageId);
  const kept = protect.filter((p) => IMAGE_ID.test(p));
  if (wanted.length === 0) return "echo pruned=none\n";
  return [
    "set -eu",
    PHASE,
    "phase prune",
    NEED_DOCKER,
    PROTECTED_IDS,
    `guard=$(printf '%s\\n' ${kept.map(shq).join(" ")} ; protected_ids in_use; protected_ids referenced)`,
    `for id in ${wanted.map(shq).join(" ")}; do`,
    `  if printf '%s\\n' "$guard" | grep -qxF "$id"; then echo "skipped=$id protected"; continue; fi`,
    `  docker image inspect "$id" >/dev/null 2>&1 || { echo "skipped=$id absent"; continue; }`,
    `  if out=$(docker rmi -f "$id" 2>&1); then echo "deleted=$id"; else echo "skipped=$id $(printf '%s' "$out" | tr '\\n' ' ')"; fi`,
    `done`,
    "",
  ].join("\n");
}

/**
 * The same record, read from the host itself: every image id in the `IMAGE` file of each release
 * under `releasesDir` (one per release of a service run from an image). Meant for the end of a deploy, after retention
 * removed old releases, so the record is exactly the images the retained releases need.
 */
export function recordReleaseImagesScript(owner: string, releasesDir: string): string {
  if (!NAME_PATTERN.test(owner)) throw new Error(`not an owner name: ${owner}`);
  const file = shq(`${IMAGE_REFS_DIR}/${owner}`);
  return [
    `mkdir -p ${IMAGE_REFS_DIR}`,
    // awk, not cat: a file without a final newline must not glue two ids together. The releases
    // are the service user's trees: only regular files are read (never a link, never a FIFO).
    `find ${shq(releasesDir)} -mindepth 2 -maxdepth 2 -name IMAGE -type f -exec awk 1 {} + 2>/dev/null | grep -xE 'sha256:[0-9a-f]{64}' | sort -u > ${file}.fleet-tmp || true`,
    `if [ -s ${file}.fleet-tmp ]; then mv -f ${file}.fleet-tmp ${file}; else rm -f ${file}.fleet-tmp ${file}; fi`,
    "",
  ].join("\n");
}

export interface RunImageArgs {
  /** The container name: the unit's name, so `docker ps` says which service it is. */
  readonly container: string;
  /** The image id to run (never a tag: a tag can move, an id cannot). */
  readonly image: string;
  /** Variables passed from the unit's environment (its EnvironmentFile) into the container. */
  readonly envKeys: readonly string[];
  /**
   * Behind the proxy, two instances run side by side during a switch: each container is named
   * after its port (`<unit>-<port>`) and gets PORT. Default false.
   */
  readonly instance?: boolean;
  /** Bind mounts (`shared:` of an image service): a host path at a container path. Default none. */
  readonly mounts?: readonly { readonly host: string; readonly container: string }[];
}

/**
 * The service's start command (the unit runs it as written under `sh -c`): runs the image in the
 * foreground with host networking, `exec`ed so the docker CLI is the unit's main process and
 * lives exactly as long as the container (the health gate's "exited" check works; stop signals
 * reach the container through the CLI) and its output goes to the journal. A container left over
 * by a killed CLI is removed first. Env is passed as `-e KEY` (values from the unit's
 * environment), not `--env-file`: Docker reads env files literally, so the quoted values of a
 * systemd EnvironmentFile would arrive with their quotes.
 */
export function dockerRunCommand(args: RunImageArgs): string {
  const c = args.instance ? `${shq(args.container)}-"$PORT"` : shq(args.container);
  const keys = args.instance ? [...args.envKeys, "PORT"] : args.envKeys;
  const env = [...new Set(keys)].sort().map((k) => {
    if (!ENV_KEY_PATTERN.test(k)) throw new Error(`not an environment variable name: ${k}`);
    return ` -e ${k}`;
  });
  const mounts = (args.mounts ?? []).map((m) => ` -v ${shq(`${m.host}:${m.container}`)}`);
  return `docker rm -f ${c} >/dev/null 2>&1; exec docker run --rm --name ${c} --network host${env.join("")}${mounts.join("")} ${imageId(args.image)}`;
}
