import { z } from "zod";
import { MIN_IMAGES_KEPT } from "../image";
import { envKey, execEnv } from "./env";
import { commitId, name } from "./names";
import { releasePath } from "./paths";
import { line } from "./text";

/** Docker's repository grammar: lowercase components joined by '.', '_' or '-', separated by '/'. */
export const DOCKER_REPOSITORY_PATTERN = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;
export const dockerRepository = z
  .string()
  .regex(DOCKER_REPOSITORY_PATTERN, "must be a docker repository name (lowercase letters, digits, '.', '_', '-', '/')");

/** The repository a docker image's tags go to when none is given: `fleet/<name>`, lowercased. */
export const defaultImageRepository = (imageName: string) =>
  `fleet/${imageName.toLowerCase().replace(/[^a-z0-9._-]/g, "-")}`;

/** Images (or snapshots) kept, counting the active one. */
export const imagesKept = z
  .number()
  .int()
  .min(MIN_IMAGES_KEPT, `must be at least ${MIN_IMAGES_KEPT} (the active image and the rollback target)`);

/** Build args: `--build-arg KEY=value`, part of the content hash. */
export const buildArgs = z.record(envKey, z.string());

/** The validation container's environment, a Docker --env-file: literal KEY=value lines. */
export const validationEnv = execEnv(line);

/** The context directory, the Dockerfile in it, an hcloud image's provision directory, as given. */
export const imageDir = z.string().min(1);
export const dockerfile = z.string().min(1);

/** What the providers get: the component resolves the directory (the provider may run elsewhere). */
export const absoluteDir = z.string().regex(/^\//, "must be an absolute path");

/** The content hash of an image's inputs (decisions/image-hash.ts): its tag and its label. */
export const contentHash = z.string().regex(/^[0-9a-f]{64}$/, "must be a content hash (64 hex digits)");

/** The commit an image is tagged and labelled with: "" outside git. */
export const imageCommit = z
  .string()
  .refine(
    (v) => v === "" || commitId.safeParse(v).success,
    "must be a commit id (letters, digits, '.', '_', '-'), or empty",
  );

/**
 * Label values Hetzner Cloud accepts: an hcloud image's name becomes the `fleet.io/image` label
 * of its snapshots, servers and keys, so it must be one (the API refuses the build otherwise).
 */
export const HCLOUD_LABEL_VALUE_PATTERN = /^[a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?$/;
const HCLOUD_LABEL_VALUE =
  "must be a Hetzner Cloud label value, as its snapshots are labelled with it: at most 63 letters, digits, '.', '_' or '-', starting and ending with a letter or digit";
export const hcloudLabelValue = z.string().regex(HCLOUD_LABEL_VALUE_PATTERN, HCLOUD_LABEL_VALUE);
/** An hcloud image's name: a name (model/rules/names.ts) that is also a Hetzner label value. */
export const hcloudImageName = name.regex(HCLOUD_LABEL_VALUE_PATTERN, HCLOUD_LABEL_VALUE);

/** A base image, server type or location: Hetzner's API judges the value itself. */
export const hcloudSetting = z.string().min(1);

/** Extra labels on an hcloud image's snapshots. */
export const snapshotLabels = z.record(z.string(), z.string());

/** A provision script, relative to the directory; one line, since each reports itself as a `ran=<name>` line. */
export const provisionScript = releasePath.regex(/^[^\n\r]*$/, "must be a single line");

/** Exported to every provision script: an entry over the exec limit makes every command fail. */
export const provisionEnv = execEnv(z.string());

/**
 * The check run on a server booted from a new snapshot (exit 0: valid). It runs as the script's
 * body: a blank one would pass any snapshot.
 */
export const imageCheck = z
  .string()
  .refine((v) => v.trim() !== "", "must be a shell command that checks the new image (exit 0: valid), not blank");

/** The Hetzner Cloud API's base URL. */
export const hcloudApiUrl = z.string().regex(/^https?:\/\/\S+$/, "must be an http(s) URL");
