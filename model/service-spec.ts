import { z } from "zod";
import type { Covers } from "./rules/issues";
import type { ServiceSpec } from "./service";
import { backupSpecSchema } from "./backup-spec";
import { restoreId } from "./rules/backup";
import { timeoutMs } from "./rules/duration";
import { serviceEnv, serviceEnvTotalProblem } from "./rules/env";
import { httpStatus, probeUrl } from "./rules/http";
import { commitId, name, releaseId, unitName, unixUser } from "./rules/names";
import { hostAddress, sshConnection } from "./rules/network";
import { notifyTarget } from "./rules/notify";
import { fleetRoot, releasePath, safeAbsolutePath } from "./rules/paths";
import {
  IMAGE_BUILDS_ITSELF,
  bodyContains,
  installRun,
  keepReleases,
  minFreeDiskMb,
  startCommand,
  versionField,
} from "./rules/service";
import { command } from "./rules/text";
import { hooksSpecSchema, sharedSourceProblem, sharedSpecSchema } from "./rules/shared";
import {
  instancePort,
  instancePortsProblem,
  proxyHostName,
  proxyListenAddress,
  proxyPath,
  proxyPort,
  proxyProblems,
  proxyTls,
} from "./rules/proxy";

const proxySpecSchema = z
  .object({
    hosts: z.array(proxyHostName),
    path: proxyPath,
    port: proxyPort,
    listen: proxyListenAddress,
    tls: proxyTls,
    acme: z
      .object({
        email: z.string().email(),
        ca: z.union([z.literal(""), probeUrl]),
        caRoot: safeAbsolutePath.optional(),
      })
      .optional(),
    drainTimeoutMs: z.number().int().min(0),
    maintenance: z.boolean(),
    instancePorts: z.object({ from: instancePort, to: instancePort }),
  })
  .superRefine((p, ctx) => {
    for (const problem of proxyProblems(p)) ctx.addIssue({ code: "custom", ...problem });
    const range = instancePortsProblem(p.instancePorts);
    if (range) ctx.addIssue({ code: "custom", path: ["instancePorts"], message: range });
  });

/**
 * The Service provider's inputs (ServiceSpec), checked with the rules config/schema.ts uses for
 * `fleet:services`: providers/service/check.ts runs it, so direct users of the Service component
 * get the config's verdicts.
 */
export const serviceSpecSchema = z
  .object({
    name,
    connection: sshConnection,
    host: hostAddress,
    root: fleetRoot,
    unitName,
    runAs: unixUser,
    releaseId,
    commit: commitId,
    source: z.object({ kind: z.enum(["git", "path", "image"]) }),
    install: z.object({ run: installRun, when: z.array(releasePath), hash: z.string().min(1) }).optional(),
    build: command.optional(),
    migrate: command.optional(),
    start: startCommand,
    env: serviceEnv,
    secretEnv: serviceEnv,
    unit: z.string(),
    health: z.object({
      url: probeUrl,
      expectStatus: httpStatus,
      bodyContains: bodyContains.optional(),
      version: z.object({ url: probeUrl, field: versionField }).optional(),
      timeoutMs: z.number().int().min(0),
      intervalMs: z.number().int().min(0),
    }),
    keepReleases,
    breakStaleLock: z.boolean(),
    stepTimeoutMs: timeoutMs,
    pinned: z.boolean().optional(),
    // The backup taken before the deploy ("" while the set has none yet).
    restoreOnRollback: z.object({ backup: backupSpecSchema, backupId: restoreId }).optional(),
    notify: z.array(notifyTarget).optional(),
    minFreeDiskMb,
    proxy: proxySpecSchema.optional(),
    shared: sharedSpecSchema.optional(),
    deleteSharedOnDestroy: z.boolean().optional(),
    hooks: hooksSpecSchema.optional(),
    hostName: name.optional(),
  })
  .superRefine((s, ctx) => {
    const sharedProblem = sharedSourceProblem(s.source.kind === "image", s.shared);
    if (sharedProblem) ctx.addIssue({ code: "custom", path: ["shared", "containerDir"], message: sharedProblem });
    const tooBig = serviceEnvTotalProblem(s.env, s.secretEnv);
    if (tooBig) ctx.addIssue({ code: "custom", path: ["env"], message: tooBig });
    if (s.source.kind === "image" && (s.install || s.build !== undefined))
      ctx.addIssue({ code: "custom", path: ["source"], message: IMAGE_BUILDS_ITSELF });
  });

/** A compile error naming any field of ServiceSpec without a rule here (or a rule for no field). */
export const SERVICE_SPEC_COVERED: Covers<ServiceSpec, z.input<typeof serviceSpecSchema>> = true;
