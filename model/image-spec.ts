import { z } from "zod";
import type { Covers } from "./rules/issues";
import type { DockerImageSpec, DockerValidateSpec, HcloudImageSpec } from "./image";
import { timeoutMs } from "./rules/duration";
import { httpStatus, probeUrl } from "./rules/http";
import {
  absoluteDir,
  buildArgs,
  contentHash,
  dockerRepository,
  dockerfile,
  hcloudApiUrl,
  hcloudImageName,
  hcloudSetting,
  imageCheck,
  imageCommit,
  imagesKept,
  provisionEnv,
  provisionScript,
  snapshotLabels,
  validationEnv,
} from "./rules/image";
import { name } from "./rules/names";
import { hostAddress, port, sshConnection } from "./rules/network";
import { excludePattern } from "./rules/paths";
import { line } from "./rules/text";

/**
 * The image providers' inputs (DockerImageSpec, HcloudImageSpec), checked with the rules
 * config/schema.ts uses for `fleet:images`: providers/image/check.ts runs them, so direct users
 * of the GoldenImage component get the config's verdicts.
 */

const manifest = z.record(z.string(), z.string());

export const dockerValidateSchema = z.object({
  url: probeUrl,
  expectStatus: httpStatus,
  bodyContains: z.string().optional(),
  env: validationEnv,
  timeoutMs,
  intervalMs: z.number().int().min(0),
});

export const dockerImageSpecSchema = z.object({
  name,
  repository: dockerRepository,
  contextDir: absoluteDir,
  exclude: z.array(excludePattern),
  dockerfile,
  buildArgs,
  manifest,
  contentHash,
  commit: imageCommit,
  dockerHost: line,
  validate: dockerValidateSchema,
  hostConnections: z.array(sshConnection),
  hostAddresses: z.array(hostAddress),
  keep: imagesKept,
  stepTimeoutMs: timeoutMs,
});

export const hcloudImageSpecSchema = z.object({
  name: hcloudImageName,
  baseImage: hcloudSetting,
  serverType: hcloudSetting,
  location: hcloudSetting,
  provisionDir: absoluteDir,
  // The component lists the directory's executables when the config names none.
  run: z.array(provisionScript).min(1, "must name at least one provision script"),
  env: provisionEnv,
  manifest,
  contentHash,
  commit: imageCommit,
  labels: snapshotLabels,
  check: imageCheck,
  checkTimeoutMs: timeoutMs,
  keep: imagesKept,
  stepTimeoutMs: timeoutMs,
  token: z.string().min(1),
  apiUrl: hcloudApiUrl,
  sshPort: port,
});

/** Compile errors naming any field of the specs without a rule here (or a rule for no field). */
export const DOCKER_IMAGE_SPEC_COVERED: Covers<DockerImageSpec, z.input<typeof dockerImageSpecSchema>> = true;
export const DOCKER_VALIDATE_SPEC_COVERED: Covers<DockerValidateSpec, z.input<typeof dockerValidateSchema>> = true;
export const HCLOUD_IMAGE_SPEC_COVERED: Covers<HcloudImageSpec, z.input<typeof hcloudImageSpecSchema>> = true;
