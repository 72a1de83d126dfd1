import { z } from "zod";
import { outcomeMarker } from "../decisions/outcome";
import { DURATION_PATTERN } from "../model/duration";
import { ENV_KEY_PATTERN, NAME_PATTERN } from "../providers/service/check";

/**
 * The stack configuration's schema (`fleet:hosts`, `fleet:services`, and the secret
 * `fleet:secretEnv` / `fleet:privateKeys`). Used only by index.ts: zod must never be captured
 * by a dynamic provider (it does not survive serialization).
 */

const duration = z.string().regex(DURATION_PATTERN, 'must be a duration like "500ms", "30s" or "2m"');
const name = z
  .string()
  .regex(NAME_PATTERN, "must be 1-64 letters, digits, '_', '.', '@' or '-', not starting with '.' or '-'");
const unixUser = z
  .string()
  .regex(/^[a-z_][a-z0-9_-]{0,31}$/, "must be a Unix user name (lowercase letters, digits, '_', '-')");
const oneLine = (what: string) =>
  z
    .string()
    .min(1, `${what} must not be empty`)
    .regex(/^[^\n\r\0]*$/, `${what} must be a single line`);
const httpUrl = z.string().regex(/^https?:\/\/[^\s]+$/, "must be an http(s) URL");
const relativePath = z
  .string()
  .min(1)
  .refine(
    (p) => !p.startsWith("/") && !p.split("/").includes(".."),
    "must be a path inside the release (relative, no '..')",
  );

/** Environment maps; key errors are reported at the key's own path. */
const envMap = z.record(z.string(), z.string()).superRefine((env, ctx) => {
  for (const key of Object.keys(env)) {
    if (!ENV_KEY_PATTERN.test(key)) {
      ctx.addIssue({
        code: "custom",
        path: [key],
        message: "environment variable names are letters, digits and '_', not starting with a digit",
      });
    } else if (key.startsWith("FLEET_")) {
      ctx.addIssue({
        code: "custom",
        path: [key],
        message: "FLEET_* variables are set by fleet (FLEET_RELEASE, FLEET_COMMIT)",
      });
    }
  }
});

const cidr = z.string().regex(/^[0-9a-fA-F.:]+\/\d{1,3}$/, 'must be a CIDR such as "203.0.113.7/32"');

const bootstrapSchema = z
  .strictObject({
    deployUser: unixUser.optional(),
    deployUserKeys: z
      .array(z.string().regex(/^(ssh-|ecdsa-|sk-)\S+ AAAA\S+/, "must be an OpenSSH public key"))
      .optional(),
    sudo: z.boolean().optional(),
    root: z
      .string()
      .regex(/^\/[A-Za-z0-9_./-]+$/, "must be an absolute path")
      .optional(),
    packages: z.array(z.string().regex(/^[a-z0-9][a-z0-9+.-]+$/, "must be a Debian package name")).optional(),
    journalMaxUse: z
      .string()
      .regex(/^\d+[KMG]$/, 'must be a size such as "200M"')
      .optional(),
    timezone: z
      .string()
      .regex(/^[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/, 'must be a time zone name such as "Europe/Berlin"')
      .optional(),
    readyTimeout: duration.optional(),
    stepTimeout: duration.optional(),
  })
  .optional();

const existingHostSchema = z
  .strictObject({
    kind: z.literal("existing"),
    address: z.string().regex(/^[A-Za-z0-9.:_-]+$/, "must be a host name or an IP address"),
    port: z.number().int().min(1).max(65535).default(22),
    user: unixUser.default("root"),
    privateKeyFile: z.string().min(1).optional(),
    hostKey: z.string().min(1).optional(),
    knownHostsFile: z.string().min(1).optional(),
    connectTimeout: duration.optional(),
    /** Another configured host to reach this one through (ssh -J). */
    jump: name.optional(),
    bootstrap: bootstrapSchema,
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

const hcloudHostSchema = z.strictObject({
  kind: z.literal("hcloud"),
  serverType: z.string().min(1),
  location: z.string().min(1),
  /** A base image name or snapshot id; or `goldenImage`, a `fleet:images` entry of kind hcloud. */
  image: z.string().min(1).optional(),
  goldenImage: name.optional(),
  labels: z.record(z.string(), z.string()).default({}),
  sshFrom: z.array(cidr).min(1, "name at least one CIDR allowed to reach SSH"),
  inbound: z
    .array(
      z.strictObject({
        protocol: z.enum(["tcp", "udp", "icmp"]),
        port: z.string().optional(),
        sourceIps: z.array(cidr).min(1),
      }),
    )
    .default([]),
  user: unixUser.default("root"),
  privateKeyFile: z.string().min(1).optional(),
  publicKeyFile: z.string().min(1),
  connectTimeout: duration.optional(),
  bootstrap: bootstrapSchema,
});

/** A host entry: `kind: existing` (the default) or `kind: hcloud`. */
export const hostSchema = z.preprocess(
  (v) => (v && typeof v === "object" && !Array.isArray(v) && !("kind" in v) ? { kind: "existing", ...v } : v),
  z.discriminatedUnion("kind", [existingHostSchema, hcloudHostSchema]),
);

export const serviceSchema = z
  .strictObject({
    /** The host it runs on; or `hosts` for several, deployed in `rollout` batches. */
    host: name.optional(),
    hosts: z.array(name).min(1).optional(),
    rollout: z
      .strictObject({
        /** Hosts per batch: a number, or a share of the hosts ("25%"). Default 1. */
        batch: z
          .union([z.number().int().min(1), z.string().regex(/^([1-9]\d?|100)%$/, 'must be a share such as "25%"')])
          .default(1),
        /** Hosts deployed first, as their own batch. Default none. */
        canary: z.array(name).default([]),
      })
      .optional(),
    source: z
      .strictObject({
        git: z.string().min(1).optional(),
        ref: z.string().min(1).optional(),
        allowDirty: z.boolean().optional(),
        path: z.string().min(1).optional(),
        exclude: z.array(z.string().min(1)).optional(),
        /** A `fleet:images` entry of kind docker: the release is the image. */
        image: name.optional(),
        /** With git: the parts of the repo this service is made of; other commits leave it alone. */
        paths: z.array(relativePath).min(1).optional(),
      })
      .superRefine((s, ctx) => {
        if ([s.git, s.path, s.image].filter(Boolean).length !== 1)
          ctx.addIssue({
            code: "custom",
            message: "give exactly one of git (a repository), path (a directory) and image (a fleet:images entry)",
          });
        if (s.path && (s.ref || s.allowDirty !== undefined))
          ctx.addIssue({ code: "custom", message: "ref and allowDirty go with git, not path" });
        if (s.paths && !s.git) ctx.addIssue({ code: "custom", message: "paths goes with git" });
        if (s.git && s.exclude)
          ctx.addIssue({ code: "custom", message: "exclude goes with path; git sources deploy the committed tree" });
      }),
    install: z
      .strictObject({
        run: oneLine("install.run"),
        when: z.array(relativePath).default([]),
      })
      .optional(),
    build: z.string().min(1).optional(),
    migrate: z.string().min(1).optional(),
    start: oneLine("start").optional(),
    env: envMap.default({}),
    health: z.strictObject({
      url: httpUrl,
      expectStatus: z.number().int().min(100).max(599).default(200),
      bodyContains: z.string().optional(),
      version: z.strictObject({ url: httpUrl, field: z.string().min(1).default("commit") }).optional(),
      timeout: duration.default("30s"),
      interval: duration.optional(),
    }),
    keepReleases: z
      .number()
      .int()
      .min(2, "must be at least 2 (the serving release and the rollback target)")
      .default(5),
    root: z
      .string()
      .regex(/^\/[A-Za-z0-9_./-]*$/, "must be an absolute path without spaces or quotes")
      .refine((p) => p !== "/" && !p.split("/").includes(".."), "must not be / or contain '..'")
      .default("/srv/fleet"),
    runAs: unixUser.optional(),
    unitName: name.optional(),
    breakStaleLock: z.boolean().optional(),
    stepTimeout: duration.optional(),
    minFreeDiskMb: z.number().int().min(0).optional(),
  })
  .superRefine((s, ctx) => {
    if (!s.host === !s.hosts)
      ctx.addIssue({ code: "custom", path: ["host"], message: "give exactly one of host and hosts" });
    if (s.rollout && !s.hosts)
      ctx.addIssue({ code: "custom", path: ["rollout"], message: "rollout goes with hosts (several hosts)" });
    if (!s.start && !s.source.image)
      ctx.addIssue({
        code: "custom",
        path: ["start"],
        message: "give the command that runs the service (only image sources have a default)",
      });
    if (s.source.image && (s.install || s.build))
      ctx.addIssue({
        code: "custom",
        path: ["source", "image"],
        message: "install and build go with git or path sources; an image is built by its fleet:images entry",
      });
    for (const c of s.rollout?.canary ?? []) {
      if (!s.hosts?.includes(c))
        ctx.addIssue({ code: "custom", path: ["rollout", "canary"], message: `"${c}" is not in hosts` });
    }
  });

/** Golden images (`fleet:images`): docker images for services, hcloud snapshots for hosts. */
export const imageSchema = z.discriminatedUnion("kind", [
  z.strictObject({
    kind: z.literal("docker"),
    context: z.string().min(1),
    dockerfile: z.string().min(1).optional(),
    buildArgs: z.record(z.string(), z.string()).optional(),
    exclude: z.array(z.string().min(1)).optional(),
    repository: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._/-]*$/, "must be a docker repository name")
      .optional(),
    validate: z.strictObject({
      url: httpUrl,
      expectStatus: z.number().int().min(100).max(599).optional(),
      bodyContains: z.string().optional(),
      env: z.record(z.string(), z.string()).optional(),
      timeout: duration.optional(),
      interval: duration.optional(),
    }),
    /** Hosts to ship it to ahead of the services that run it. */
    hosts: z.array(name).default([]),
    keep: z.number().int().min(2).optional(),
  }),
  z.strictObject({
    kind: z.literal("hcloud"),
    baseImage: z.string().min(1),
    serverType: z.string().min(1),
    location: z.string().min(1),
    provision: z.strictObject({
      dir: z.string().min(1),
      run: z.array(z.string().min(1)).optional(),
      env: z.record(z.string(), z.string()).optional(),
    }),
    validate: z.strictObject({ check: z.string().min(1), timeout: duration.optional() }),
    keep: z.number().int().min(2).optional(),
    labels: z.record(z.string(), z.string()).optional(),
  }),
]);

/** Rollback pins (`npm run rollback`): the release each service must run. */
export const pinsSchema = z.record(
  name,
  z.strictObject({
    releaseId: z.string().regex(/^[a-z0-9][a-z0-9-]{5,63}$/, "must be a release id"),
    commit: z.string().min(1),
  }),
);

const secretEnvSchema = z.record(name, envMap);

/** Database backups taken before the services they protect switch (`fleet:backups`). */
export const backupSchema = z
  .strictObject({
    /** The configured host that runs the backup and keeps the files. */
    host: name,
    postgres: z
      .strictObject({
        host: z.string().regex(/^[A-Za-z0-9.:_-]+$/, "must be a host name or an IP address"),
        port: z.number().int().min(1).max(65535).default(5432),
        database: z.string().min(1),
        user: z.string().min(1),
      })
      .optional(),
    sqlite: z.strictObject({ path: z.string().regex(/^\/\S+$/, "must be an absolute path") }).optional(),
    /** Services that wait for this backup; a new release of any of them takes a new backup. */
    protects: z.array(name).default([]),
    keep: z.number().int().min(0).default(5),
    keepDays: z.number().int().min(0).default(0),
    verifyTables: z
      .array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/, "must be table or schema.table"))
      .default([]),
    /** A backup id to restore on the next `pulumi up` (explicit only). */
    restore: z.string().optional(),
    trigger: z.string().optional(),
  })
  .superRefine((b, ctx) => {
    if (!b.postgres === !b.sqlite) ctx.addIssue({ code: "custom", message: "give exactly one of postgres and sqlite" });
  });

/** Notification targets (secret config: their URLs carry tokens). */
export const notifySchema = z.array(
  z
    .strictObject({
      kind: z.enum(["webhook", "slack", "discord", "telegram"]),
      url: z.string().regex(/^https?:\/\/\S+$/, "must be an http(s) URL"),
      chatId: z.string().min(1).optional(),
      events: z
        .array(z.enum(["success", "failure", "rollback", "critical"]))
        .min(1)
        .optional(),
      /** Only for these services. Default: all. */
      services: z.array(name).optional(),
    })
    .superRefine((t, ctx) => {
      if (t.kind === "telegram" && !t.chatId)
        ctx.addIssue({ code: "custom", path: ["chatId"], message: "a telegram target needs chatId" });
    }),
);

export const fleetConfigSchema = z.strictObject({
  hosts: z.record(name, hostSchema),
  services: z.record(name, serviceSchema).default({}),
  secretEnv: secretEnvSchema.default({}),
  privateKeys: z.record(name, z.string().min(1)).default({}),
  notify: notifySchema.default([]),
  backups: z.record(name, backupSchema).default({}),
  pins: pinsSchema.default({}),
  images: z.record(name, imageSchema).default({}),
  /** Pre-deploy checks `npm run deploy` runs first, in order (the apps' tests). */
  checks: z
    .array(z.strictObject({ name: z.string().min(1), run: z.string().min(1), cwd: z.string().min(1).optional() }))
    .default([]),
  /** Secret: the PostgreSQL password of each postgres backup, by backup name. */
  dbPasswords: z.record(name, z.string().min(1)).default({}),
});

type Loose = Record<string, Record<string, unknown> | undefined> | undefined;

/**
 * Problems between sections (a service on an unknown host, a key given twice). Read from the raw
 * config, defensively, so they are reported together with field errors in one run.
 */
export function crossReferenceProblems(raw: unknown): string[] {
  const cfg = (raw ?? {}) as Record<string, unknown>;
  const obj = (v: unknown) => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
  const hosts = obj(cfg["hosts"]) as NonNullable<Loose>;
  const services = obj(cfg["services"]) as NonNullable<Loose>;
  const secretEnv = obj(cfg["secretEnv"]) as NonNullable<Loose>;
  const privateKeys = obj(cfg["privateKeys"]);
  const problems: string[] = [];
  const hostNames = Object.keys(hosts);
  for (const [svc, s] of Object.entries(services)) {
    const host = obj(s)["host"];
    if (typeof host === "string" && !hosts[host]) {
      problems.push(`services.${svc}.host: unknown host "${host}"; fleet:hosts has: ${hostNames.join(", ") || "none"}`);
    }
    const many = obj(s)["hosts"];
    for (const h of Array.isArray(many) ? many : []) {
      if (typeof h === "string" && !hosts[h])
        problems.push(`services.${svc}.hosts: unknown host "${h}"; fleet:hosts has: ${hostNames.join(", ") || "none"}`);
    }
    for (const key of Object.keys(obj(obj(s)["env"]))) {
      if (obj(secretEnv[svc])[key] !== undefined)
        problems.push(`services.${svc}.env.${key}: is also in fleet:secretEnv; keep it in one place`);
    }
  }
  const notify = Array.isArray(cfg["notify"]) ? (cfg["notify"] as unknown[]) : [];
  notify.forEach((t, i) => {
    const only = obj(t)["services"];
    for (const svc of Array.isArray(only) ? only : []) {
      if (typeof svc === "string" && !services[svc])
        problems.push(`notify.${i}.services: no service "${svc}" in fleet:services`);
    }
  });
  const backups = obj(cfg["backups"]) as NonNullable<Loose>;
  const dbPasswords = obj(cfg["dbPasswords"]);
  for (const [b, spec] of Object.entries(backups)) {
    const host = obj(spec)["host"];
    if (typeof host === "string" && !hosts[host])
      problems.push(`backups.${b}.host: unknown host "${host}"; fleet:hosts has: ${hostNames.join(", ") || "none"}`);
    const protects = obj(spec)["protects"];
    for (const svc of Array.isArray(protects) ? protects : []) {
      if (typeof svc === "string" && !services[svc])
        problems.push(`backups.${b}.protects: no service "${svc}" in fleet:services`);
    }
    if (obj(spec)["postgres"] && !dbPasswords[b]) {
      problems.push(
        `backups.${b}.postgres: its password goes in secret config: pulumi config set --secret --path 'fleet:dbPasswords.${b}' …`,
      );
    }
  }
  const images = obj(cfg["images"]) as NonNullable<Loose>;
  const imageKind = (n: unknown) => (typeof n === "string" ? obj(images[n])["kind"] : undefined);
  for (const [svc, s] of Object.entries(services)) {
    const image = obj(obj(s)["source"])["image"];
    if (typeof image === "string" && imageKind(image) !== "docker") {
      problems.push(`services.${svc}.source.image: "${image}" is not a docker entry of fleet:images`);
    }
  }
  for (const [hostName, h] of Object.entries(hosts)) {
    const golden = obj(h)["goldenImage"];
    if (typeof golden === "string" && imageKind(golden) !== "hcloud") {
      problems.push(`hosts.${hostName}.goldenImage: "${golden}" is not an hcloud entry of fleet:images`);
    }
    if (obj(h)["kind"] === "hcloud" && !!obj(h)["image"] === !!golden) {
      problems.push(`hosts.${hostName}.image: give exactly one of image (a base image or snapshot id) and goldenImage`);
    }
  }
  for (const [img, spec] of Object.entries(images)) {
    const to = obj(spec)["hosts"];
    for (const h of Array.isArray(to) ? to : []) {
      if (typeof h === "string" && !hosts[h]) problems.push(`images.${img}.hosts: unknown host "${h}"`);
    }
  }
  for (const svc of Object.keys(obj(cfg["pins"]))) {
    if (!services[svc])
      problems.push(`pins.${svc}: no service "${svc}" in fleet:services (npm run rollback -- --unpin clears the pins)`);
  }
  for (const svc of Object.keys(secretEnv)) {
    if (!services[svc]) problems.push(`secretEnv.${svc}: no service "${svc}" in fleet:services`);
  }
  for (const [hostName, h] of Object.entries(hosts)) {
    const jump = obj(h)["jump"];
    if (typeof jump === "string" && (jump === hostName || !hosts[jump])) {
      problems.push(`hosts.${hostName}.jump: "${jump}" is not another host in fleet:hosts`);
    }
    const keys = (obj(h)["privateKeyFile"] ? 1 : 0) + (privateKeys[hostName] ? 1 : 0);
    if (keys !== 1) {
      problems.push(
        `hosts.${hostName}.privateKeyFile: give exactly one of privateKeyFile and a secret fleet:privateKeys entry (pulumi config set --secret --path 'fleet:privateKeys.${hostName}' …)`,
      );
    }
  }
  return problems;
}

export type FleetConfig = z.output<typeof fleetConfigSchema>;
export type HostConfig = z.output<typeof hostSchema>;
export type ExistingHostConfig = z.output<typeof existingHostSchema>;
export type HcloudHostConfig = z.output<typeof hcloudHostSchema>;
export type ServiceConfig = z.output<typeof serviceSchema>;

/** Bad configuration, every problem on its own line with its path. Nothing has run yet. */
export class FleetConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(
      `fleet configuration is invalid (nothing was deployed):\n${problems.map((p) => `  - ${p}`).join("\n")}\n${outcomeMarker("config")}`,
    );
    this.name = "FleetConfigError";
  }
}

/** Validates raw config; throws FleetConfigError naming each bad field by its path. */
export function parseFleetConfig(raw: unknown): FleetConfig {
  const result = fleetConfigSchema.safeParse(raw);
  const problems = [
    ...(result.success
      ? []
      : result.error.issues.map((issue) => `${issue.path.map(String).join(".") || "(root)"}: ${issue.message}`)),
    ...crossReferenceProblems(raw),
  ];
  if (problems.length > 0 || !result.success) throw new FleetConfigError(problems);
  return result.data;
}
