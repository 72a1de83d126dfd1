import { z } from "zod";
import { outcomeMarker } from "../decisions/outcome";
import { DURATION_PATTERN } from "../model/duration";
import { excludePatternProblem } from "../model/exclude-pattern";
import { ENV_KEY_PATTERN, NAME_PATTERN, hasNoncharacter, unitNameProblem } from "../providers/service/check";
import { BACKUP_ID_PATTERN, SAFE_PATH_PATTERN } from "../providers/backup/check";
import { TABLE_PATTERN } from "../commands/backup-engines";
import { restoreOnRollbackProblems } from "./restore-on-rollback";

/**
 * The stack configuration's schema (`fleet:hosts`, `fleet:services`, and the secret
 * `fleet:secretEnv` / `fleet:privateKeys`). Used only by index.ts: zod must never be captured
 * by a dynamic provider (it does not survive serialization).
 */

const duration = z.string().regex(DURATION_PATTERN, 'must be a duration like "500ms", "30s" or "2m"');
/**
 * Names that are properties of every JavaScript object: a lookup by such a name (`pins[name]`,
 * `hosts[host]`) finds Object.prototype's member where no entry exists.
 */
const OBJECT_MEMBERS = new Set(Object.getOwnPropertyNames(Object.prototype));
const name = z
  .string()
  .regex(NAME_PATTERN, "must be 1-64 letters, digits, '_', '.', '@' or '-', not starting with '.' or '-'")
  .refine((v) => !OBJECT_MEMBERS.has(v), "must not be a JavaScript object member name (constructor, toString, …)");
/** A service's name or unitName: it names the systemd unit too. */
const unitName = name.superRefine((v, ctx) => {
  const problem = unitNameProblem(v);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});
const unixUser = z
  .string()
  .regex(/^[a-z_][a-z0-9_-]{0,31}$/, "must be a Unix user name (lowercase letters, digits, '_', '-')");
/**
 * Linux's limit for one argument or environment entry (MAX_ARG_STRLEN, with its NUL): a longer
 * command or variable makes the exec fail with E2BIG.
 */
export const MAX_ARG_BYTES = 131_071;
const fitsExec = (v: string) => Buffer.byteLength(v) <= MAX_ARG_BYTES;
/**
 * A process's whole environment, `KEY=value` entries together: half of Linux's default limit for
 * arguments and environment (ARG_MAX, 2 MiB), the rest left for what systemd and sh add.
 */
export const MAX_ENV_BYTES = 1_048_576;
const envBytes = (env: Record<string, unknown>) =>
  Object.entries(env).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(String(v)) + 2, 0);
const envTooBig = (n: number) =>
  `the environment totals ${n} bytes; a process gets at most ${MAX_ENV_BYTES} (Linux's limit for arguments and environment is 2 MiB)`;
const tooLong = `must be at most ${MAX_ARG_BYTES} bytes (Linux's limit for one argument or environment entry)`;
const NONCHARACTER =
  "must not contain Unicode noncharacters (U+FDD0–U+FDEF, U+FFFE, U+FFFF, …): systemd refuses text holding them";
/** A shell command run as `sh -c <command>`. */
const command = z.string().min(1).refine(fitsExec, tooLong);
const oneLine = (what: string) =>
  z
    .string()
    .min(1, `${what} must not be empty`)
    .regex(/^[^\n\r\0]*$/, `${what} must be a single line`)
    .refine(fitsExec, tooLong);
/** Printable ASCII only: curl refuses control characters and sends other bytes unencoded. */
const httpUrl = z
  .string()
  .regex(/^https?:\/\/[\x21-\x7e]+$/, "must be an http(s) URL")
  .max(8192, "must be at most 8192 characters (HTTP servers refuse longer request lines)");
/** Relative, normalized (no empty, '.' or '..' parts): these become file names in the release. */
const relativePath = z
  .string()
  .min(1)
  .refine(
    (p) => p.split("/").every((part) => part !== "" && part !== "." && part !== ".."),
    "must be a path inside the release (relative, without '..', '.' or empty parts)",
  );
/** An exclude pattern (gitignore-like, see source/files.ts): the matcher's own rule. */
const excludePattern = z.string().superRefine((p, ctx) => {
  const problem = excludePatternProblem(p);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});
/** One line of text (no newline, no NUL). */
const line = z.string().regex(/^[^\n\r\0]*$/, "must be a single line");
/** A PostgreSQL database or role name: one line (it goes into a pgpass line), at most 63 bytes (NAMEDATALEN). */
const pgName = line
  .min(1)
  .refine((v) => Buffer.byteLength(v) <= 63, "must be at most 63 bytes (PostgreSQL's limit for names)");

/** Environment maps; key errors are reported at the key's own path. */
const envMap = z.record(z.string(), z.string()).superRefine((env, ctx) => {
  for (const key of Object.keys(env)) {
    if (!fitsExec(`${key}=${env[key]}`)) ctx.addIssue({ code: "custom", path: [key], message: tooLong });
    if (hasNoncharacter(env[key]!)) ctx.addIssue({ code: "custom", path: [key], message: NONCHARACTER });
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
      // One line: a newline would add another authorized_keys entry.
      .array(
        z
          .string()
          .regex(/^(ssh-|ecdsa-|sk-)\S+ AAAA\S+( [^\n\r\0]*)?\n?$/, "must be one OpenSSH public key (one line)"),
      )
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
        exclude: z.array(excludePattern).optional(),
        /** A `fleet:images` entry of kind docker: the release is the image. */
        image: name.optional(),
        /** With git: the parts of the repo this service is made of; other commits leave it alone. */
        paths: z.array(relativePath).min(1).optional(),
      })
      .superRefine((s, ctx) => {
        // Given, not truthy: an empty path is reported as empty, not as missing.
        if ([s.git, s.path, s.image].filter((v) => v !== undefined).length !== 1)
          ctx.addIssue({
            code: "custom",
            message: "give exactly one of git (a repository), path (a directory) and image (a fleet:images entry)",
          });
        if (s.path !== undefined && (s.ref !== undefined || s.allowDirty !== undefined))
          ctx.addIssue({ code: "custom", message: "ref and allowDirty go with git, not path" });
        if (s.paths && s.git === undefined) ctx.addIssue({ code: "custom", message: "paths goes with git" });
        if (s.git !== undefined && s.exclude)
          ctx.addIssue({ code: "custom", message: "exclude goes with path; git sources deploy the committed tree" });
      }),
    install: z
      .strictObject({
        run: oneLine("install.run"),
        when: z.array(relativePath).default([]),
      })
      .optional(),
    build: command.optional(),
    migrate: command.optional(),
    // Rendered into the unit file, whose lines systemd drops when they hold a noncharacter.
    start: oneLine("start")
      .refine((v) => v.trim() !== "", "start must not be blank")
      .refine((v) => !hasNoncharacter(v), NONCHARACTER)
      .optional(),
    env: envMap.default({}),
    health: z.strictObject({
      url: httpUrl,
      expectStatus: z.number().int().min(100).max(599).default(200),
      // grep -F takes each line of a multi-line pattern as a pattern of its own.
      bodyContains: line.optional(),
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
    unitName: unitName.optional(),
    breakStaleLock: z.boolean().optional(),
    stepTimeout: duration.optional(),
    minFreeDiskMb: z.number().int().min(0).optional(),
    /** After an automatic rollback that followed a migration, restore the pre-deploy backup of the set protecting it. */
    restoreOnRollback: z.boolean().optional(),
  })
  .superRefine((s, ctx) => {
    if (!s.host === !s.hosts)
      ctx.addIssue({ code: "custom", path: ["host"], message: "give exactly one of host and hosts" });
    if (s.rollout && !s.hosts)
      ctx.addIssue({ code: "custom", path: ["rollout"], message: "rollout goes with hosts (several hosts)" });
    if (s.start === undefined && s.source.image === undefined)
      ctx.addIssue({
        code: "custom",
        path: ["start"],
        message: "give the command that runs the service (only image sources have a default)",
      });
    if (s.source.image !== undefined && (s.install || s.build !== undefined))
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

/** Docker's repository grammar (commands/image.ts imageTag checks the same). */
export const DOCKER_REPOSITORY = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;
const envKey = z
  .string()
  .regex(ENV_KEY_PATTERN, "environment variable names are letters, digits and '_', not starting with a digit");

/** An environment for a process: each `KEY=value` entry within the exec limit. */
const execEnv = (value: z.ZodString) =>
  z.record(envKey, value).superRefine((env, ctx) => {
    for (const [k, v] of Object.entries(env))
      if (!fitsExec(`${k}=${v}`)) ctx.addIssue({ code: "custom", path: [k], message: tooLong });
    if (envBytes(env) > MAX_ENV_BYTES) ctx.addIssue({ code: "custom", message: envTooBig(envBytes(env)) });
  });

/** Golden images (`fleet:images`): docker images for services, hcloud snapshots for hosts. */
export const imageSchema = z.discriminatedUnion("kind", [
  z.strictObject({
    kind: z.literal("docker"),
    context: z.string().min(1),
    dockerfile: z.string().min(1).optional(),
    buildArgs: z.record(envKey, z.string()).optional(),
    exclude: z.array(excludePattern).optional(),
    repository: z.string().regex(DOCKER_REPOSITORY, "must be a docker repository name").optional(),
    validate: z.strictObject({
      url: httpUrl,
      expectStatus: z.number().int().min(100).max(599).optional(),
      bodyContains: z.string().optional(),
      // A Docker --env-file: literal KEY=value lines.
      env: execEnv(line).optional(),
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
      // One line each: every script reports itself as a `ran=<name>` line.
      run: z.array(relativePath.regex(/^[^\n\r]*$/, "must be a single line")).optional(),
      // Exported to every script: an entry over the exec limit makes every command fail.
      env: execEnv(z.string()).optional(),
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
    // A git commit, or a release id: it lands in REVISION and in facts the deploy reads back.
    commit: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, "must be a commit id (letters, digits, '.', '_', '-')"),
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
        // One line each: they are written into a pgpass line.
        database: pgName,
        user: pgName,
      })
      .optional(),
    sqlite: z
      .strictObject({
        // What the backup provider accepts: the path goes into sqlite dot-commands and double quotes.
        path: z
          .string()
          .regex(SAFE_PATH_PATTERN, "must be an absolute path of letters, digits and _ . / @ + -")
          .refine((p) => p !== "/" && !p.split("/").includes(".."), "must not be / or contain '..'"),
      })
      .optional(),
    /** Services that wait for this backup; a new release of any of them takes a new backup. */
    protects: z.array(name).default([]),
    keep: z.number().int().min(0).default(5),
    keepDays: z.number().int().min(0).default(0),
    verifyTables: z
      .array(z.string().regex(TABLE_PATTERN, "must be table or schema.table (lowercase letters, digits, '_')"))
      .default([]),
    /** A backup id to restore on the next `pulumi up` (explicit only). */
    restore: z
      .string()
      .refine((id) => id === "" || BACKUP_ID_PATTERN.test(id), "must be a backup id (`<name>-<time>-<release>`)")
      .optional(),
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
  services: z.record(unitName, serviceSchema).default({}),
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
  dbPasswords: z.record(name, line.min(1)).default({}),
});

type Loose = Record<string, Record<string, unknown> | undefined> | undefined;

/**
 * Problems between sections (a service on an unknown host, a key given twice). Read from the raw
 * config, defensively, so they are reported together with field errors in one run. Lookups by
 * name are own-property only: "toString" is not a host just because every object has one.
 */
export function crossReferenceProblems(raw: unknown): string[] {
  const cfg = (raw ?? {}) as Record<string, unknown>;
  const obj = (v: unknown) => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
  const own = (o: Record<string, unknown>, k: unknown): any =>
    typeof k === "string" && Object.hasOwn(o, k) ? o[k] : undefined;
  const at = (...path: (string | number)[]) => formatFieldPath(path);
  const q = (v: unknown) => JSON.stringify(v);
  const hosts = obj(cfg["hosts"]) as NonNullable<Loose>;
  const services = obj(cfg["services"]) as NonNullable<Loose>;
  const secretEnv = obj(cfg["secretEnv"]) as NonNullable<Loose>;
  const privateKeys = obj(cfg["privateKeys"]);
  const problems: string[] = [];
  const hostNames = Object.keys(hosts);
  const known = () => hostNames.map((n) => (PLAIN_SEGMENT.test(n) ? n : q(n))).join(", ") || "none";
  for (const [svc, s] of Object.entries(services)) {
    const host = obj(s)["host"];
    if (typeof host === "string" && !own(hosts, host)) {
      problems.push(`${at("services", svc, "host")}: unknown host ${q(host)}; fleet:hosts has: ${known()}`);
    }
    const many = obj(s)["hosts"];
    for (const h of Array.isArray(many) ? many : []) {
      if (typeof h === "string" && !own(hosts, h))
        problems.push(`${at("services", svc, "hosts")}: unknown host ${q(h)}; fleet:hosts has: ${known()}`);
    }
    for (const key of Object.keys(obj(obj(s)["env"]))) {
      if (own(obj(own(secretEnv, svc)), key) !== undefined)
        problems.push(`${at("services", svc, "env", key)}: is also in fleet:secretEnv; keep it in one place`);
    }
    // env and secretEnv land in one EnvironmentFile, and the service's exec must take it all.
    const total = envBytes(obj(obj(s)["env"])) + envBytes(obj(own(secretEnv, svc)));
    if (total > MAX_ENV_BYTES)
      problems.push(`${at("services", svc, "env")}: with fleet:secretEnv, ${envTooBig(total)}`);
  }
  const notify = Array.isArray(cfg["notify"]) ? (cfg["notify"] as unknown[]) : [];
  notify.forEach((t, i) => {
    const only = obj(t)["services"];
    for (const svc of Array.isArray(only) ? only : []) {
      if (typeof svc === "string" && !own(services, svc))
        problems.push(`${at("notify", i, "services")}: no service ${q(svc)} in fleet:services`);
    }
  });
  const backups = obj(cfg["backups"]) as NonNullable<Loose>;
  const dbPasswords = obj(cfg["dbPasswords"]);
  for (const [b, spec] of Object.entries(backups)) {
    const host = obj(spec)["host"];
    if (typeof host === "string" && !own(hosts, host))
      problems.push(`${at("backups", b, "host")}: unknown host ${q(host)}; fleet:hosts has: ${known()}`);
    const protects = obj(spec)["protects"];
    for (const svc of Array.isArray(protects) ? protects : []) {
      if (typeof svc === "string" && !own(services, svc))
        problems.push(`${at("backups", b, "protects")}: no service ${q(svc)} in fleet:services`);
    }
    if (obj(spec)["postgres"] && own(dbPasswords, b) === undefined) {
      problems.push(
        `${at("backups", b, "postgres")}: its password goes in secret config: pulumi config set --secret --path 'fleet:dbPasswords.${b}' …`,
      );
    }
  }
  for (const p of restoreOnRollbackProblems(cfg)) problems.push(`${at(...p.path)}: ${p.message}`);
  const images = obj(cfg["images"]) as NonNullable<Loose>;
  const imageKind = (n: unknown) => obj(own(images, n))["kind"];
  for (const [svc, s] of Object.entries(services)) {
    const image = obj(obj(s)["source"])["image"];
    if (typeof image === "string" && imageKind(image) !== "docker") {
      problems.push(`${at("services", svc, "source", "image")}: ${q(image)} is not a docker entry of fleet:images`);
    }
  }
  for (const [hostName, h] of Object.entries(hosts)) {
    const golden = obj(h)["goldenImage"];
    if (typeof golden === "string" && imageKind(golden) !== "hcloud") {
      problems.push(`${at("hosts", hostName, "goldenImage")}: ${q(golden)} is not an hcloud entry of fleet:images`);
    }
    if (obj(h)["kind"] === "hcloud" && !!obj(h)["image"] === !!golden) {
      problems.push(
        `${at("hosts", hostName, "image")}: give exactly one of image (a base image or snapshot id) and goldenImage`,
      );
    }
  }
  for (const [img, spec] of Object.entries(images)) {
    const to = obj(spec)["hosts"];
    for (const h of Array.isArray(to) ? to : []) {
      if (typeof h === "string" && !own(hosts, h)) problems.push(`${at("images", img, "hosts")}: unknown host ${q(h)}`);
    }
    // components/golden-image.ts names the repository after the image when none is given.
    const repository = `fleet/${img.toLowerCase().replace(/[^a-z0-9._-]/g, "-")}`;
    if (
      obj(spec)["kind"] === "docker" &&
      obj(spec)["repository"] === undefined &&
      !DOCKER_REPOSITORY.test(repository)
    ) {
      problems.push(
        `${at("images", img)}: the default repository ${q(repository)} is not a valid Docker name; give repository (e.g. "fleet/app")`,
      );
    }
  }
  for (const svc of Object.keys(obj(cfg["pins"]))) {
    if (!own(services, svc))
      problems.push(
        `${at("pins", svc)}: no service ${q(svc)} in fleet:services (npm run rollback -- --unpin clears the pins)`,
      );
  }
  for (const svc of Object.keys(secretEnv)) {
    if (!own(services, svc)) problems.push(`${at("secretEnv", svc)}: no service ${q(svc)} in fleet:services`);
  }
  for (const [hostName, h] of Object.entries(hosts)) {
    const jump = obj(h)["jump"];
    if (typeof jump === "string" && (jump === hostName || !own(hosts, jump))) {
      problems.push(`${at("hosts", hostName, "jump")}: ${q(jump)} is not another host in fleet:hosts`);
    }
    const keys = (obj(h)["privateKeyFile"] ? 1 : 0) + (own(privateKeys, hostName) ? 1 : 0);
    if (keys !== 1) {
      problems.push(
        `${at("hosts", hostName, "privateKeyFile")}: give exactly one of privateKeyFile and a secret fleet:privateKeys entry (pulumi config set --secret --path 'fleet:privateKeys.${hostName}' …)`,
      );
    }
  }
  return problems;
}

/**
 * Strings no host can receive as given: a NUL byte (no shell word, C string, file or unit can
 * hold one) and a lone UTF-16 surrogate (it has no UTF-8 form; it would arrive as U+FFFD).
 * Keys included, each reported at its path; and the key "__proto__", which zod's records drop.
 */
function unrepresentable(value: unknown, path: (string | number)[] = []): string[] {
  const check = (s: string, at: (string | number)[]) => {
    if (s.includes("\0")) return [`${formatFieldPath(at)}: must not contain a NUL byte (no host can receive one)`];
    if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s))
      return [`${formatFieldPath(at)}: must be valid Unicode (a lone surrogate has no UTF-8 form)`];
    return [];
  };
  if (typeof value === "string") return check(value, path);
  if (Array.isArray(value)) return value.flatMap((v, i) => unrepresentable(v, [...path, i]));
  // "__proto__" (a JSON key like any other) sets an object's prototype when assigned: it would be lost.
  const proto = (k: string) =>
    k === "__proto__" ? [`${formatFieldPath([...path, k])}: "__proto__" cannot be a name`] : [];
  if (value && typeof value === "object")
    return Object.entries(value).flatMap(([k, v]) => [
      ...check(k, [...path, k]),
      ...proto(k),
      ...unrepresentable(v, [...path, k]),
    ]);
  return [];
}

/** Plain path parts print as they are; any other (spaces, controls, quotes) as a JSON string. */
const PLAIN_SEGMENT = /^[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*$/;

/** A field's path as problems name it: `services.web.env.PORT`, `services["a b"].host`. */
export function formatFieldPath(path: readonly (string | number | symbol)[]): string {
  let out = "";
  for (const seg of path) {
    const s = typeof seg === "symbol" ? String(seg) : seg;
    if (typeof s === "number" || PLAIN_SEGMENT.test(s)) out += `${out ? "." : ""}${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
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
  // A bad record key's own message says what a name must be ("Invalid key in record" does not).
  const message = (issue: z.core.$ZodIssue) =>
    issue.code === "invalid_key" && issue.issues.length > 0
      ? issue.issues.map((i) => i.message).join("; ")
      : issue.message;
  const problems = [
    ...unrepresentable(raw),
    ...(result.success
      ? []
      : result.error.issues.map((issue) => `${formatFieldPath(issue.path) || "(root)"}: ${message(issue)}`)),
    ...crossReferenceProblems(raw),
  ];
  if (problems.length > 0 || !result.success) throw new FleetConfigError([...new Set(problems)]);
  return result.data;
}
