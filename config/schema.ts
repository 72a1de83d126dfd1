import { z } from "zod";
import { defaultBackupsDir, isInsideDir } from "../model/backup";
import { fleetError, isFleetError, type FleetError } from "../model/errors";
import {
  ONE_ENGINE,
  backupDays,
  backupsKept,
  hasOneEngine,
  pgHost,
  pgName,
  pgPassword,
  restoreId,
  tableName,
} from "../model/rules/backup";
import { duration, timeout } from "../model/rules/duration";
import { serviceEnv, serviceEnvTotalProblem } from "../model/rules/env";
import { httpStatus, probeUrl } from "../model/rules/http";
import {
  DOCKER_REPOSITORY_PATTERN,
  buildArgs,
  defaultImageRepository,
  dockerRepository,
  dockerfile,
  hcloudLabelValue,
  hcloudSetting,
  imageCheck,
  imageDir,
  imagesKept,
  provisionEnv,
  provisionScript,
  snapshotLabels,
  validationEnv,
} from "../model/rules/image";
import { PLAIN_SEGMENT, formatFieldPath, issueMessage } from "../model/rules/issues";
import { commitId, name, releaseId, unitName, unixUser } from "../model/rules/names";
import { SSH_FROM_REQUIRED, cidr, hostAddress, port } from "../model/rules/network";
import { notifyTargetShape, telegramChatProblem } from "../model/rules/notify";
import { excludePattern, fleetRoot, releasePath, safeAbsolutePath } from "../model/rules/paths";
import { checkSharedPaths, containerDir, sharedPath, sharedSourceProblem } from "../model/rules/shared";
import { restoreOnRollbackProblems } from "./restore-on-rollback";
import {
  IMAGE_BUILDS_ITSELF,
  START_REQUIRED,
  bodyContains,
  installRun,
  keepReleases,
  minFreeDiskMb,
  startCommand,
  versionField,
} from "../model/rules/service";
import { command, unrepresentable } from "../model/rules/text";
import {
  instancePort,
  instancePortsProblem,
  proxyHostName,
  proxyListen,
  proxyPath,
  proxyPort,
  proxyProblems,
  proxyTls,
} from "../model/rules/proxy";

/** A service behind the host's proxy (zero-downtime releases, docs/zero-downtime.md). */
const proxySchema = z
  .strictObject({
    hosts: z.array(proxyHostName).default([]),
    path: proxyPath.default("/"),
    port: proxyPort.optional(),
    listen: proxyListen.default(""),
    tls: proxyTls.default("off"),
    acme: z
      .strictObject({
        email: z.string().email("must be an email address"),
        ca: probeUrl.optional(),
        caRoot: safeAbsolutePath.optional(),
      })
      .optional(),
    drainTimeout: duration.default("30s"),
    maintenance: z.boolean().default(false),
    instancePorts: z.strictObject({ from: instancePort, to: instancePort }).optional(),
  })
  .superRefine((p, ctx) => {
    for (const problem of proxyProblems(p)) ctx.addIssue({ code: "custom", ...problem });
    const range = p.instancePorts && instancePortsProblem(p.instancePorts);
    if (range) ctx.addIssue({ code: "custom", path: ["instancePorts"], message: range });
  });

export { formatFieldPath } from "../model/rules/issues";

/**
 * The stack configuration's schema (`fleet:hosts`, `fleet:services`, and the secret
 * `fleet:secretEnv` / `fleet:privateKeys`), built from the model's rules (model/rules/), which
 * the providers' checks use too: one rule, one verdict. Used only by index.ts and the scripts.
 */

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
    root: fleetRoot.optional(),
    packages: z.array(z.string().regex(/^[a-z0-9][a-z0-9+.-]+$/, "must be a Debian package name")).optional(),
    journalMaxUse: z
      .string()
      .regex(/^\d+[KMG]$/, 'must be a size such as "200M"')
      .optional(),
    timezone: z
      .string()
      .regex(/^[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/, 'must be a time zone name such as "Europe/Berlin"')
      .optional(),
    readyTimeout: timeout.optional(),
    stepTimeout: timeout.optional(),
    /** Install and run fleet's proxy (Caddy), which services with `proxy:` need. */
    proxy: z.boolean().optional(),
  })
  .optional();

const existingHostSchema = z
  .strictObject({
    kind: z.literal("existing"),
    address: hostAddress,
    port: port.default(22),
    user: unixUser.default("root"),
    privateKeyFile: z.string().min(1).optional(),
    hostKey: z.string().min(1).optional(),
    knownHostsFile: z.string().min(1).optional(),
    connectTimeout: timeout.optional(),
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
  sshFrom: z.array(cidr).min(1, SSH_FROM_REQUIRED),
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
  connectTimeout: timeout.optional(),
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
        paths: z.array(releasePath).min(1).optional(),
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
        run: installRun,
        when: z.array(releasePath).default([]),
      })
      .optional(),
    build: command.optional(),
    migrate: command.optional(),
    start: startCommand.optional(),
    env: serviceEnv.default({}),
    health: z.strictObject({
      url: probeUrl,
      expectStatus: httpStatus.default(200),
      bodyContains: bodyContains.optional(),
      version: z.strictObject({ url: probeUrl, field: versionField.default("commit") }).optional(),
      timeout: duration.default("30s"),
      interval: duration.optional(),
    }),
    keepReleases: keepReleases.default(5),
    root: fleetRoot.default("/srv/fleet"),
    runAs: unixUser.optional(),
    unitName: unitName.optional(),
    breakStaleLock: z.boolean().optional(),
    stepTimeout: timeout.optional(),
    minFreeDiskMb: minFreeDiskMb.optional(),
    /** After an automatic rollback that followed a migration, restore the pre-deploy backup of the set protecting it. */
    restoreOnRollback: z.boolean().optional(),
    /** Zero-downtime releases behind the host's proxy. Default: none (restart in place). */
    proxy: proxySchema.optional(),
    /** Files and directories that outlive releases, linked into each (Capistrano's linked_dirs/files). Default none. */
    shared: z
      .strictObject({
        dirs: z.array(sharedPath).default([]),
        /** path → the content the first deploy creates it with. */
        files: z.record(sharedPath, z.string()).default({}),
        /** An image source: where its container sees them (mounted by the default docker run). */
        containerDir: containerDir.optional(),
      })
      .superRefine(checkSharedPaths)
      .optional(),
    /** `pulumi destroy` removes the shared files too. Default false: they are kept. */
    deleteSharedOnDestroy: z.boolean().optional(),
    /** Commands run on the host around a deploy (see model/service.ts HooksSpec). Default none. */
    hooks: z
      .strictObject({
        preSwitch: command.optional(),
        postDeploy: z
          .union([command, z.strictObject({ run: command, rollbackOnFailure: z.boolean().default(false) })])
          .optional(),
        postRollback: command.optional(),
      })
      .optional(),
  })
  .superRefine((s, ctx) => {
    if (!s.host === !s.hosts)
      ctx.addIssue({ code: "custom", path: ["host"], message: "give exactly one of host and hosts" });
    if (s.rollout && !s.hosts)
      ctx.addIssue({ code: "custom", path: ["rollout"], message: "rollout goes with hosts (several hosts)" });
    if (s.start === undefined && s.source.image === undefined)
      ctx.addIssue({ code: "custom", path: ["start"], message: START_REQUIRED });
    if (s.source.image !== undefined && (s.install || s.build !== undefined))
      ctx.addIssue({ code: "custom", path: ["source", "image"], message: IMAGE_BUILDS_ITSELF });
    const sharedProblem = sharedSourceProblem(s.source.image !== undefined, s.shared);
    if (sharedProblem) ctx.addIssue({ code: "custom", path: ["shared", "containerDir"], message: sharedProblem });
    if (s.proxy && Object.hasOwn(s.env, "PORT"))
      ctx.addIssue({
        code: "custom",
        path: ["env", "PORT"],
        message:
          "behind the proxy, fleet gives each instance its own PORT; remove it from env (start the service on $PORT)",
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
    context: imageDir,
    dockerfile: dockerfile.optional(),
    buildArgs: buildArgs.optional(),
    exclude: z.array(excludePattern).optional(),
    repository: dockerRepository.optional(),
    validate: z.strictObject({
      url: probeUrl,
      expectStatus: httpStatus.optional(),
      bodyContains: z.string().optional(),
      env: validationEnv.optional(),
      timeout: timeout.optional(),
      interval: duration.optional(),
    }),
    /** Hosts to ship it to ahead of the services that run it. */
    hosts: z.array(name).default([]),
    keep: imagesKept.optional(),
  }),
  z.strictObject({
    kind: z.literal("hcloud"),
    baseImage: hcloudSetting,
    serverType: hcloudSetting,
    location: hcloudSetting,
    provision: z.strictObject({
      dir: imageDir,
      run: z.array(provisionScript).optional(),
      env: provisionEnv.optional(),
    }),
    validate: z.strictObject({ check: imageCheck, timeout: timeout.optional() }),
    keep: imagesKept.optional(),
    labels: snapshotLabels.optional(),
  }),
]);

/** Rollback pins (`npm run rollback`): the release each service must run. */
export const pinsSchema = z.record(name, z.strictObject({ releaseId, commit: commitId }));

const secretEnvSchema = z.record(name, serviceEnv);

/** Database backups taken before the services they protect switch (`fleet:backups`). */
export const backupSchema = z
  .strictObject({
    /** The configured host that runs the backup and keeps the files. */
    host: name,
    postgres: z
      .strictObject({
        host: pgHost,
        port: port.default(5432),
        database: pgName,
        user: pgName,
      })
      .optional(),
    sqlite: z.strictObject({ path: safeAbsolutePath }).optional(),
    /** Services that wait for this backup; a new release of any of them takes a new backup. */
    protects: z.array(name).default([]),
    keep: backupsKept.default(5),
    keepDays: backupDays.default(0),
    verifyTables: z.array(tableName).default([]),
    /** A backup id to restore on the next `pulumi up` (explicit only). */
    restore: restoreId.optional(),
    trigger: z.string().optional(),
  })
  .superRefine((b, ctx) => {
    if (!hasOneEngine(b)) ctx.addIssue({ code: "custom", message: ONE_ENGINE });
  });

/** Notification targets (secret config: their URLs carry tokens). */
export const notifySchema = z.array(
  z
    .strictObject({
      ...notifyTargetShape,
      /** Only for these services. Default: all. */
      services: z.array(name).optional(),
    })
    .superRefine(telegramChatProblem),
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
  dbPasswords: z.record(name, pgPassword).default({}),
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
    const tooBig = serviceEnvTotalProblem(obj(obj(s)["env"]), obj(own(secretEnv, svc)));
    if (tooBig) problems.push(`${at("services", svc, "env")}: with fleet:secretEnv, ${tooBig}`);
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
    // The name labels an hcloud image's snapshots (its rules as a name are the key's own).
    if (obj(spec)["kind"] === "hcloud")
      for (const issue of hcloudLabelValue.safeParse(img).error?.issues ?? [])
        problems.push(`${at("images", img)}: ${issue.message}`);
    // components/golden-image.ts names the repository after the image when none is given.
    const repository = defaultImageRepository(img);
    if (
      obj(spec)["kind"] === "docker" &&
      obj(spec)["repository"] === undefined &&
      !DOCKER_REPOSITORY_PATTERN.test(repository)
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
  for (const p of restoreOnRollbackProblems(cfg)) problems.push(`${at(...p.path)}: ${p.message}`);
  problems.push(...proxyCrossProblems(hosts, services));
  problems.push(...backupsInServiceProblems(backups, services));
  return problems;
}

/** The root index.ts gives DatabaseBackup (none: the component's default) and a service's default root. */
const DEFAULT_ROOT = "/srv/fleet";

/**
 * A backup set's directory inside the folder of a service on its host (security issue "a
 * service's own account never becomes root"): deleting the service (`rm -rf <root>/<service>`)
 * would delete the backups, whatever deleteBackupsOnDestroy says. The default directory
 * `<root>/.backups/<name>` is in no service's folder under the same root (names never start
 * with '.'), but a service with another root can hold it (root /srv, service fleet).
 */
function backupsInServiceProblems(backups: Record<string, unknown>, services: Record<string, unknown>): string[] {
  const obj = (v: unknown) => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, any>) : {});
  const problems: string[] = [];
  for (const [b, spec] of Object.entries(backups)) {
    const host = obj(spec)["host"];
    if (typeof host !== "string") continue;
    const dir = defaultBackupsDir(DEFAULT_ROOT, b);
    for (const [svc, raw] of Object.entries(services)) {
      const s = obj(raw);
      const onHosts = typeof s["host"] === "string" ? [s["host"]] : Array.isArray(s["hosts"]) ? s["hosts"] : [];
      if (!onHosts.includes(host)) continue;
      const root = typeof s["root"] === "string" ? s["root"] : DEFAULT_ROOT;
      const svcDir = `${root.replace(/\/+$/, "")}/${svc}`;
      if (isInsideDir(dir, svcDir))
        problems.push(
          `${formatFieldPath(["services", svc, "root"])}: on host ${JSON.stringify(host)} the folder of services.${svc} (${svcDir}) holds the backups of backups.${b} (${dir}), and deleting the service would delete them; give services.${svc} another root (the default ${DEFAULT_ROOT} is safe: no service's folder there holds .backups/)`,
        );
    }
  }
  return problems;
}

/**
 * Services behind one host's proxy share it: the host must run it (bootstrap.proxy), services
 * on one port share its address and TLS, and no two claim the same host names and path.
 */
function proxyCrossProblems(hosts: Record<string, unknown>, services: Record<string, unknown>): string[] {
  const obj = (v: unknown) => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, any>) : {});
  const problems: string[] = [];
  const servers = new Map<string, { svc: string; listen: string; tls: string }>();
  const routes = new Map<string, string>();
  for (const [svc, raw] of Object.entries(services)) {
    const s = obj(raw);
    const proxy = obj(s["proxy"]);
    if (!s["proxy"]) continue;
    const tls = typeof proxy["tls"] === "string" ? proxy["tls"] : "off";
    const port = typeof proxy["port"] === "number" ? proxy["port"] : tls === "off" ? 80 : 443;
    const listen = typeof proxy["listen"] === "string" ? proxy["listen"] : "";
    const routeHosts = Array.isArray(proxy["hosts"]) ? [...(proxy["hosts"] as unknown[])].map(String).sort() : [];
    const routePath = typeof proxy["path"] === "string" ? proxy["path"].replace(/\/+$/, "") || "/" : "/";
    const onHosts =
      typeof s["host"] === "string" ? [s["host"]] : Array.isArray(s["hosts"]) ? (s["hosts"] as unknown[]) : [];
    for (const h of onHosts) {
      if (typeof h !== "string" || !Object.hasOwn(hosts, h)) continue;
      if (obj(obj(hosts[h])["bootstrap"])["proxy"] !== true)
        problems.push(
          `${formatFieldPath(["services", svc, "proxy"])}: host ${JSON.stringify(h)} does not run fleet's proxy; set hosts.${h}.bootstrap.proxy: true`,
        );
      const key = `${h}:${port}`;
      const other = servers.get(key);
      if (other && (other.listen !== listen || other.tls !== tls))
        problems.push(
          `${formatFieldPath(["services", svc, "proxy"])}: port ${port} on ${h} is also services.${other.svc}'s, with listen ${JSON.stringify(other.listen)} and tls ${other.tls}; services on one port must agree on both`,
        );
      else if (!other) servers.set(key, { svc, listen, tls });
      const route = `${key} ${routeHosts.join(",")} ${routePath}`;
      const claimed = routes.get(route);
      if (claimed)
        problems.push(
          `${formatFieldPath(["services", svc, "proxy"])}: services.${claimed} already routes ${routeHosts.join(", ") || "every host"} ${routePath} on ${h}:${port}; give one of them another path or host name`,
        );
      else routes.set(route, svc);
    }
  }
  return problems;
}

export type FleetConfig = z.output<typeof fleetConfigSchema>;
export type HostConfig = z.output<typeof hostSchema>;
export type ExistingHostConfig = z.output<typeof existingHostSchema>;
export type HcloudHostConfig = z.output<typeof hcloudHostSchema>;
export type ServiceConfig = z.output<typeof serviceSchema>;

/** A config FleetError with its problems. */
export type ConfigInvalid = FleetError & { readonly kind: "config"; readonly problems: readonly string[] };

/** Bad configuration, every problem on its own line with its path. Nothing has run yet. */
export function configInvalid(problems: readonly string[]): ConfigInvalid {
  return fleetError(
    "config",
    `fleet configuration is invalid (nothing was deployed):\n${problems.map((p) => `  - ${p}`).join("\n")}`,
    "Fix each field named above in the stack's config (Pulumi.<stack>.yaml) and run again.",
    { problems },
  ) as ConfigInvalid;
}

/** A config FleetError that lists its problems (as `configInvalid` builds it). */
export function isConfigInvalid(err: unknown): err is ConfigInvalid {
  return isFleetError(err) && err.kind === "config" && Array.isArray(err.problems);
}

/** Validates raw config; throws a config FleetError naming each bad field by its path. */
export function parseFleetConfig(raw: unknown): FleetConfig {
  const result = fleetConfigSchema.safeParse(raw);
  const problems = [
    ...unrepresentable(raw).map((p) => `${formatFieldPath(p.path)}: ${p.message}`),
    ...(result.success
      ? []
      : result.error.issues.map((issue) => `${formatFieldPath(issue.path) || "(root)"}: ${issueMessage(issue)}`)),
    ...crossReferenceProblems(raw),
  ];
  if (problems.length > 0 || !result.success) throw configInvalid([...new Set(problems)]);
  return result.data;
}
