import { z } from "zod";
import { DURATION_PATTERN } from "../model/duration";
import { ENV_KEY_PATTERN, NAME_PATTERN } from "../providers/service/check";

/**
 * The stack configuration's schema (`fleet:hosts`, `fleet:services`, and the secret
 * `fleet:secretEnv` / `fleet:privateKeys`). Used only by index.ts: zod must never be captured
 * by a dynamic provider (it does not survive serialization).
 */

const duration = z.string().regex(DURATION_PATTERN, 'must be a duration like "500ms", "30s" or "2m"');
const name = z.string().regex(NAME_PATTERN, "must be 1-64 letters, digits, '_', '.', '@' or '-', not starting with '.' or '-'");
const unixUser = z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, "must be a Unix user name (lowercase letters, digits, '_', '-')");
const oneLine = (what: string) =>
  z.string().min(1, `${what} must not be empty`).regex(/^[^\n\r\0]*$/, `${what} must be a single line`);
const httpUrl = z.string().regex(/^https?:\/\/[^\s]+$/, "must be an http(s) URL");
const relativePath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith("/") && !p.split("/").includes(".."), "must be a path inside the release (relative, no '..')");

export const hostSchema = z
  .strictObject({
    address: z.string().regex(/^[A-Za-z0-9.:_-]+$/, "must be a host name or an IP address"),
    port: z.number().int().min(1).max(65535).default(22),
    user: unixUser.default("root"),
    privateKeyFile: z.string().min(1).optional(),
    hostKey: z.string().min(1).optional(),
    knownHostsFile: z.string().min(1).optional(),
    connectTimeout: duration.optional(),
  })
  .superRefine((host, ctx) => {
    if (!!host.hostKey === !!host.knownHostsFile) {
      ctx.addIssue({
        code: "custom",
        path: ["hostKey"],
        message: 'give exactly one of hostKey ("ssh-ed25519 AAAA…" or "SHA256:…") and knownHostsFile',
      });
    }
  });

export const serviceSchema = z.strictObject({
  host: name,
  source: z
    .strictObject({
      git: z.string().min(1).optional(),
      ref: z.string().min(1).optional(),
      allowDirty: z.boolean().optional(),
      path: z.string().min(1).optional(),
      exclude: z.array(z.string().min(1)).optional(),
    })
    .superRefine((s, ctx) => {
      if (!!s.git === !!s.path) ctx.addIssue({ code: "custom", message: "give exactly one of git (a repository) and path (a directory)" });
      if (s.path && (s.ref || s.allowDirty !== undefined)) ctx.addIssue({ code: "custom", message: "ref and allowDirty go with git, not path" });
      if (s.git && s.exclude) ctx.addIssue({ code: "custom", message: "exclude goes with path; git sources deploy the committed tree" });
    }),
  install: z
    .strictObject({
      run: oneLine("install.run"),
      when: z.array(relativePath).default([]),
    })
    .optional(),
  build: z.string().min(1).optional(),
  start: oneLine("start"),
  env: z
    .record(z.string().regex(ENV_KEY_PATTERN, "environment variable names are letters, digits and '_'"), z.string())
    .default({}),
  health: z.strictObject({
    url: httpUrl,
    expectStatus: z.number().int().min(100).max(599).default(200),
    bodyContains: z.string().optional(),
    version: z.strictObject({ url: httpUrl, field: z.string().min(1).default("commit") }).optional(),
    timeout: duration.default("30s"),
    interval: duration.optional(),
  }),
  keepReleases: z.number().int().min(2, "must be at least 2 (the serving release and the rollback target)").default(5),
  root: z
    .string()
    .regex(/^\/[A-Za-z0-9_./-]*$/, "must be an absolute path without spaces or quotes")
    .refine((p) => p !== "/" && !p.split("/").includes(".."), "must not be / or contain '..'")
    .default("/srv/fleet"),
  runAs: unixUser.optional(),
  unitName: name.optional(),
  breakStaleLock: z.boolean().optional(),
  stepTimeout: duration.optional(),
});

const secretEnvSchema = z.record(name, z.record(z.string().regex(ENV_KEY_PATTERN, "environment variable names are letters, digits and '_'"), z.string()));

export const fleetConfigSchema = z
  .strictObject({
    hosts: z.record(name, hostSchema),
    services: z.record(name, serviceSchema).default({}),
    secretEnv: secretEnvSchema.default({}),
    privateKeys: z.record(name, z.string().min(1)).default({}),
  })
  .superRefine((cfg, ctx) => {
    const hosts = Object.keys(cfg.hosts);
    for (const [svc, s] of Object.entries(cfg.services)) {
      if (!cfg.hosts[s.host]) {
        ctx.addIssue({ code: "custom", path: ["services", svc, "host"], message: `unknown host "${s.host}"; fleet:hosts has: ${hosts.join(", ") || "none"}` });
      }
      for (const key of Object.keys(s.env)) {
        if (key.startsWith("FLEET_")) ctx.addIssue({ code: "custom", path: ["services", svc, "env", key], message: "FLEET_* variables are set by fleet" });
        if (cfg.secretEnv[svc]?.[key] !== undefined) {
          ctx.addIssue({ code: "custom", path: ["services", svc, "env", key], message: "is also in fleet:secretEnv; keep it in one place" });
        }
      }
    }
    for (const svc of Object.keys(cfg.secretEnv)) {
      if (!cfg.services[svc]) ctx.addIssue({ code: "custom", path: ["secretEnv", svc], message: `no service "${svc}" in fleet:services` });
    }
    for (const [hostName, h] of Object.entries(cfg.hosts)) {
      const keys = (h.privateKeyFile ? 1 : 0) + (cfg.privateKeys[hostName] ? 1 : 0);
      if (keys !== 1) {
        ctx.addIssue({
          code: "custom",
          path: ["hosts", hostName, "privateKeyFile"],
          message: "give exactly one of privateKeyFile and a secret fleet:privateKeys entry (pulumi config set --secret --path 'fleet:privateKeys.<host>' …)",
        });
      }
    }
  });

export type FleetConfig = z.output<typeof fleetConfigSchema>;
export type HostConfig = z.output<typeof hostSchema>;
export type ServiceConfig = z.output<typeof serviceSchema>;

/** Bad configuration, every problem on its own line with its path. Nothing has run yet. */
export class FleetConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`fleet configuration is invalid (nothing was deployed):\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "FleetConfigError";
  }
}

/** Validates raw config; throws FleetConfigError naming each bad field by its path. */
export function parseFleetConfig(raw: unknown): FleetConfig {
  const result = fleetConfigSchema.safeParse(raw);
  if (result.success) return result.data;
  throw new FleetConfigError(
    result.error.issues.map((issue) => `${issue.path.map(String).join(".") || "(root)"}: ${issue.message}`),
  );
}
