/**
 * The config side of the hostile-input campaign: a complete valid fleet config, the list of
 * every user-controlled string field in it (with where a problem about it must be reported), and
 * what a config that validation accepted must still survive: every builder that takes its values
 * builds its script without throwing, and the providers' own checks agree with validation.
 */
import fc from "fast-check";
import { isConfigInvalid, formatFieldPath, parseFleetConfig, type FleetConfig } from "../../../config/schema";
import { serviceLayout } from "../../../commands/layout";
import { renderEnvFile, renderUnit } from "../../../commands/unit";
import {
  activateScript,
  breakLockScript,
  deleteScript,
  fastActivateScript,
  finalizeScript,
  installScript,
  prepareScript,
  readScript,
  rollbackScript,
} from "../../../commands/service";
import { statusScript } from "../../../commands/status";
import {
  backupScript,
  defaultBackupsDir,
  deleteBackupsScript,
  listScript,
  pruneScript,
  restoreScript,
} from "../../../commands/backup";
import { bootstrapScript } from "../../../commands/host";
import { dockerBuildScript, imageTag, renderDockerEnvFile } from "../../../commands/image";
import { imageCheckScript, provisionScript } from "../../../commands/image-provision";
import { checkServiceInputs } from "../../../providers/service/check";
import { checkBackupInputs } from "../../../providers/backup/check";
import { parseDuration } from "../../../model/duration";
import type { ServiceSpec } from "../../../model/service";
import type { BackupTarget } from "../../../model/backup";
import {
  absolutePathLike,
  around,
  envKeyLike,
  hostileString,
  nameLike,
  relativePathLike,
  urlLike,
} from "./hostile-arbitraries";

type Json = Record<string, any>;

/** A config that uses every section, so each field below is reachable. */
export function baseConfig(): Json {
  return {
    hosts: {
      web1: {
        address: "127.0.0.11",
        user: "deploy",
        privateKeyFile: "/keys/web1",
        hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB",
        bootstrap: {
          deployUser: "deploy",
          deployUserKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB me@laptop"],
          root: "/srv/fleet",
          packages: ["curl"],
          timezone: "Europe/Berlin",
          journalMaxUse: "200M",
        },
      },
      web2: { address: "127.0.0.12", privateKeyFile: "/keys/web2", knownHostsFile: "/keys/known_hosts" },
      cloud: {
        kind: "hcloud",
        serverType: "cx22",
        location: "fsn1",
        image: "debian-12",
        labels: { team: "ops" },
        sshFrom: ["203.0.113.7/32"],
        privateKeyFile: "/keys/cloud",
        publicKeyFile: "/keys/cloud.pub",
      },
    },
    services: {
      api: {
        host: "web1",
        source: { git: "../api", ref: "main", paths: ["backend"] },
        install: { run: "pip install -r requirements.txt", when: ["backend/requirements.txt"] },
        build: "make build",
        migrate: "./migrate.sh",
        start: "python3 app.py",
        env: { FOO: "bar" },
        health: {
          url: "http://127.0.0.1:8080/health",
          bodyContains: "ok",
          version: { url: "http://127.0.0.1:8080/version", field: "commit" },
        },
        root: "/srv/fleet",
        runAs: "deploy",
        unitName: "api",
      },
      web: {
        hosts: ["web1", "web2"],
        rollout: { batch: 1, canary: ["web1"] },
        source: { path: "./web", exclude: ["*.log"] },
        start: "node server.js",
        health: { url: "http://127.0.0.1:8081/" },
      },
      img: { host: "web2", source: { image: "appimg" }, health: { url: "http://127.0.0.1:8082/" } },
    },
    secretEnv: { api: { TOKEN: "s3cret" } },
    privateKeys: {},
    notify: [
      { kind: "telegram", url: "https://api.telegram.example/bot1/sendMessage", chatId: "42", services: ["api"] },
    ],
    backups: {
      db: {
        host: "web1",
        sqlite: { path: "/srv/data/app.db" },
        protects: ["api"],
        verifyTables: ["users"],
        restore: "db-20260101T000000Z-none",
        trigger: "t1",
      },
      pg: { host: "web1", postgres: { host: "127.0.0.14", database: "appdb", user: "app" } },
    },
    dbPasswords: { pg: "pw" },
    pins: { api: { releaseId: "abcdef123456", commit: "0123456789abcdef0123456789abcdef01234567" } },
    images: {
      appimg: {
        kind: "docker",
        context: "./img",
        dockerfile: "Dockerfile",
        buildArgs: { VERSION: "1" },
        exclude: ["*.tmp"],
        repository: "fleet/app",
        validate: { url: "http://127.0.0.1:8090/", bodyContains: "ok", env: { MODE: "check" } },
        hosts: ["web2"],
      },
      golden: {
        kind: "hcloud",
        baseImage: "debian-12",
        serverType: "cx22",
        location: "fsn1",
        provision: { dir: "./provision", run: ["setup.sh"], env: { ROLE: "worker" } },
        validate: { check: "systemctl is-active nginx" },
        labels: { role: "worker" },
      },
    },
    checks: [{ name: "unit tests", run: "npm test", cwd: "./api" }],
  };
}

/** One user-controlled field: how to put a value there, and where a problem must be reported. */
export interface ConfigTarget {
  readonly field: string;
  readonly arb: fc.Arbitrary<string>;
  /** Puts `v` into the config; returns the path (segments) a problem with it must name. */
  readonly put: (cfg: Json, v: string) => readonly (string | number)[];
  /** Why the value is trusted (commands): it still has to reach the host byte-exact. */
  readonly trusted?: string;
}

function setAt(cfg: Json, path: readonly (string | number)[], v: unknown): void {
  let o: any = cfg;
  for (const seg of path.slice(0, -1)) o = o[seg];
  o[path[path.length - 1]!] = v;
}

/** A value field: the problem must name exactly this path (or, for list items, the list). */
const at = (path: readonly (string | number)[], arb: fc.Arbitrary<string>, reportAt = path): ConfigTarget => ({
  field: path.join("."),
  arb,
  put: (cfg, v) => {
    setAt(cfg, path, v);
    return reportAt;
  },
});

/** A key field: a new entry named `v` (a copy of `template`) under `parent`. */
const key = (parent: readonly string[], arb: fc.Arbitrary<string>, template: (cfg: Json) => unknown): ConfigTarget => ({
  field: `${parent.join(".")}.<key>`,
  arb,
  put: (cfg, v) => {
    let o: any = cfg;
    for (const seg of parent) o = o[seg];
    o[v] = structuredClone(template(cfg));
    return [...parent, v];
  },
});

const COMMAND = "commands are the user's own shell code (trusted by design); fleet must pass them on byte-exact";
const cmd = (path: readonly (string | number)[], arb: fc.Arbitrary<string>): ConfigTarget => ({
  ...at(path, arb),
  trusted: COMMAND,
});

const H = hostileString();
const url = urlLike("http://127.0.0.1:8080/");

/** Every user-controlled string field of the fleet config. */
export const CONFIG_TARGETS: readonly ConfigTarget[] = [
  // Services
  key(["services"], nameLike, (c) => ({ ...c["services"]["web"], rollout: undefined })),
  at(["services", "api", "host"], around("web1")),
  at(["services", "web", "hosts", 1], around("web2"), ["services", "web", "hosts"]),
  at(["services", "web", "rollout", "canary", 0], around("web1"), ["services", "web", "rollout", "canary"]),
  at(["services", "api", "source", "git"], around("../api")),
  at(["services", "api", "source", "ref"], around("main")),
  at(["services", "api", "source", "paths", 0], relativePathLike),
  at(["services", "web", "source", "path"], around("./web")),
  at(["services", "web", "source", "exclude", 0], around("*.log")),
  at(["services", "img", "source", "image"], around("appimg"), ["services", "img", "source", "image"]),
  cmd(["services", "api", "install", "run"], around("pip install .")),
  at(["services", "api", "install", "when", 0], relativePathLike),
  cmd(["services", "api", "build"], around("make build")),
  cmd(["services", "api", "migrate"], around("./migrate.sh")),
  cmd(["services", "api", "start"], around("python3 app.py")),
  key(["services", "api", "env"], envKeyLike, () => "v"),
  at(["services", "api", "env", "FOO"], H),
  at(["services", "api", "health", "url"], url),
  at(["services", "api", "health", "bodyContains"], H),
  at(["services", "api", "health", "version", "url"], url),
  at(["services", "api", "health", "version", "field"], around("commit")),
  at(["services", "api", "health", "timeout"], around("30s")),
  at(["services", "api", "root"], absolutePathLike),
  at(["services", "api", "runAs"], around("deploy")),
  at(["services", "api", "unitName"], nameLike),
  key(["secretEnv", "api"], envKeyLike, () => "v"),
  at(["secretEnv", "api", "TOKEN"], H),
  key(["secretEnv"], nameLike, () => ({})),
  // Hosts
  key(["hosts"], nameLike, (c) => ({ ...c["hosts"]["web2"] })),
  at(["hosts", "web1", "address"], around("127.0.0.11")),
  at(["hosts", "web1", "user"], around("deploy")),
  at(["hosts", "web1", "privateKeyFile"], absolutePathLike),
  at(["hosts", "web1", "hostKey"], around("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB")),
  at(["hosts", "web2", "knownHostsFile"], absolutePathLike),
  at(["hosts", "web2", "jump"], around("web1")),
  at(["hosts", "web1", "bootstrap", "deployUser"], around("deploy")),
  at(["hosts", "web1", "bootstrap", "deployUserKeys", 0], around("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB")),
  at(["hosts", "web1", "bootstrap", "root"], absolutePathLike),
  at(["hosts", "web1", "bootstrap", "packages", 0], around("curl")),
  at(["hosts", "web1", "bootstrap", "timezone"], around("Europe/Berlin")),
  at(["hosts", "web1", "bootstrap", "journalMaxUse"], around("200M")),
  at(["hosts", "cloud", "serverType"], H),
  at(["hosts", "cloud", "location"], H),
  at(["hosts", "cloud", "image"], H),
  key(["hosts", "cloud", "labels"], H, () => "v"),
  at(["hosts", "cloud", "labels", "team"], H),
  at(["hosts", "cloud", "sshFrom", 0], around("203.0.113.7/32")),
  at(["hosts", "cloud", "publicKeyFile"], absolutePathLike),
  key(["privateKeys"], nameLike, () => "-----BEGIN OPENSSH PRIVATE KEY-----"),
  // Notifications
  at(["notify", 0, "url"], urlLike("https://hooks.example/")),
  at(["notify", 0, "chatId"], H),
  at(["notify", 0, "services", 0], around("api"), ["notify", 0, "services"]),
  // Backups
  key(["backups"], nameLike, (c) => ({ ...c["backups"]["db"], protects: [], restore: undefined })),
  at(["backups", "db", "host"], around("web1")),
  at(["backups", "db", "sqlite", "path"], absolutePathLike),
  at(["backups", "db", "protects", 0], around("api"), ["backups", "db", "protects"]),
  at(["backups", "db", "verifyTables", 0], around("users")),
  at(["backups", "db", "restore"], around("db-20260101T000000Z-none")),
  at(["backups", "db", "trigger"], H),
  at(["backups", "pg", "postgres", "host"], around("127.0.0.14")),
  at(["backups", "pg", "postgres", "database"], around("appdb")),
  at(["backups", "pg", "postgres", "user"], around("app")),
  at(["dbPasswords", "pg"], H),
  // Pins
  at(["pins", "api", "releaseId"], around("abcdef123456")),
  at(["pins", "api", "commit"], around("0123456789abcdef")),
  // Images
  key(["images"], nameLike, (c) => ({ ...c["images"]["appimg"], repository: undefined, hosts: [] })),
  at(["images", "appimg", "context"], around("./img")),
  at(["images", "appimg", "dockerfile"], around("Dockerfile")),
  at(["images", "appimg", "repository"], around("fleet/app")),
  key(["images", "appimg", "buildArgs"], envKeyLike, () => "v"),
  at(["images", "appimg", "buildArgs", "VERSION"], H),
  at(["images", "appimg", "exclude", 0], around("*.tmp")),
  at(["images", "appimg", "validate", "url"], url),
  at(["images", "appimg", "validate", "bodyContains"], H),
  key(["images", "appimg", "validate", "env"], envKeyLike, () => "v"),
  at(["images", "appimg", "validate", "env", "MODE"], H),
  at(["images", "golden", "baseImage"], H),
  at(["images", "golden", "provision", "dir"], around("./provision")),
  at(["images", "golden", "provision", "run", 0], relativePathLike),
  key(["images", "golden", "provision", "env"], envKeyLike, () => "v"),
  at(["images", "golden", "provision", "env", "ROLE"], H),
  cmd(["images", "golden", "validate", "check"], around("systemctl is-active nginx")),
  // Pre-deploy checks (run on the deploying machine)
  at(["checks", 0, "name"], H),
  cmd(["checks", 0, "run"], around("npm test")),
  at(["checks", 0, "cwd"], around("./api")),
];

export type Verdict =
  { readonly ok: true; readonly cfg: FleetConfig } | { readonly ok: false; readonly problems: readonly string[] };

/**
 * Validates `raw`; returns the verdict, or throws an AssertionError-worthy description when
 * validation crashed with anything but a config FleetError.
 */
export function validate(raw: unknown): Verdict {
  try {
    return { ok: true, cfg: parseFleetConfig(raw) };
  } catch (err) {
    if (isConfigInvalid(err)) return { ok: false, problems: err.problems };
    throw new Error(`validation crashed with ${(err as Error)?.name}: ${(err as Error)?.message}`);
  }
}

/** Messages that name no rule: they cannot tell the user how to fix the value. */
const UNHELPFUL = [/^Invalid key in record$/, /^Invalid input$/, /^Invalid$/];

/**
 * What is wrong with how a rejection was reported, or undefined when it is right: every problem
 * names `path` (or a field under it) and says what the value must be.
 */
export function reportProblem(problems: readonly string[], path: readonly (string | number)[]): string | undefined {
  const want = formatFieldPath(path);
  if (problems.length === 0) return "rejected without any problem";
  for (const p of problems) {
    const next = p.charAt(want.length);
    if (!p.startsWith(want) || ![":", ".", "["].includes(next))
      return `problem does not name ${JSON.stringify(want)}: ${JSON.stringify(p)}`;
    const message = p.slice(p.indexOf(": ", want.length) + 2);
    if (message.length < 8 || UNHELPFUL.some((r) => r.test(message)))
      return `problem does not say how to fix it: ${JSON.stringify(p)}`;
  }
  return undefined;
}

const COMMIT = "0123456789abcdef0123456789abcdef01234567";

/** A service's provider inputs as components/service.ts derives them from the config. */
export function serviceSpecOf(cfg: FleetConfig, name: string): ServiceSpec {
  const s = cfg.services[name]!;
  const hostName = s.host ?? s.hosts![0]!;
  const host = cfg.hosts[hostName]!;
  const unitName = s.unitName ?? name;
  const runAs = s.runAs ?? host.user;
  const start = s.start ?? "docker run";
  const layout = serviceLayout(s.root, name, unitName);
  const label = `services.${name}`;
  return {
    name,
    connection: { host: "127.0.0.1", user: host.user, privateKey: "KEY", hostKey: "ssh-ed25519 AAAA" },
    host: "127.0.0.1",
    root: s.root,
    unitName,
    runAs,
    releaseId: cfg.pins[name]?.releaseId ?? "abcdef123456",
    commit: cfg.pins[name]?.commit ?? COMMIT,
    source: { kind: "path", path: "/src", exclude: [] },
    ...(s.install ? { install: { run: s.install.run, when: s.install.when, hash: "feedface" } } : {}),
    ...(s.build ? { build: s.build } : {}),
    ...(s.migrate ? { migrate: s.migrate } : {}),
    start,
    env: s.env,
    secretEnv: cfg.secretEnv[name] ?? {},
    unit: renderUnit({ name, runAs, start, layout }),
    health: {
      url: s.health.url,
      expectStatus: s.health.expectStatus,
      ...(s.health.bodyContains !== undefined ? { bodyContains: s.health.bodyContains } : {}),
      ...(s.health.version ? { version: { url: s.health.version.url, field: s.health.version.field } } : {}),
      timeoutMs: parseDuration(s.health.timeout, `${label}.health.timeout`),
      intervalMs: parseDuration(s.health.interval ?? "100ms", `${label}.health.interval`),
    },
    keepReleases: s.keepReleases,
    breakStaleLock: s.breakStaleLock ?? false,
    stepTimeoutMs: 60_000,
    minFreeDiskMb: s.minFreeDiskMb ?? 512,
  };
}

const OWNER = { who: "me@box", machine: "box", pid: 1, since: "2026-01-01T00:00:00Z", release: "r", token: "t" };

/**
 * Everything an accepted config must survive before anything runs: every builder that takes
 * its values builds, and the providers' own input checks agree with validation. Returns the
 * first failure, or undefined.
 */
export function buildEverything(cfg: FleetConfig): string | undefined {
  const step = (what: string, f: () => unknown): string | undefined => {
    try {
      const r = f();
      if (Array.isArray(r) && r.length > 0) return `${what}: ${JSON.stringify(r)}`;
      return undefined;
    } catch (err) {
      return `${what} threw: ${(err as Error).message.slice(0, 300)}`;
    }
  };
  const problems: (string | undefined)[] = [];
  for (const name of Object.keys(cfg.services)) {
    const spec = serviceSpecOf(cfg, name);
    const s = cfg.services[name]!;
    const plan = {
      stage: true,
      envFile: renderEnvFile({ ...spec.env, ...spec.secretEnv }, spec.releaseId, spec.commit),
      token: "t0k3n",
      watchdogDeadlineMs: 24_000,
    };
    const ending = {
      deleteReleases: [],
      audit: { who: "me", from: "", to: spec.releaseId, result: "ok" as const },
      elapsedBeforeMs: 1,
      token: "t0k3n",
    };
    problems.push(
      step(`services.${name}: provider check`, () =>
        checkServiceInputs({ ...spec, start: s.start ?? spec.start } as unknown as Record<string, unknown>),
      ),
      step(`services.${name}: prepareScript`, () => prepareScript(spec, OWNER)),
      step(`services.${name}: installScript`, () => spec.install && installScript(spec, true)),
      step(`services.${name}: activateScript`, () => activateScript(spec, plan)),
      step(`services.${name}: fastActivateScript`, () => fastActivateScript(spec, OWNER, plan)),
      step(`services.${name}: rollbackScript`, () => rollbackScript(spec, "t")),
      step(`services.${name}: readScript`, () => readScript(spec)),
      step(`services.${name}: deleteScript`, () => deleteScript(spec)),
      step(`services.${name}: breakLockScript`, () => breakLockScript(spec, "owner")),
      step(`services.${name}: finalizeScript`, () => finalizeScript(spec, ending)),
      step(`services.${name}: statusScript`, () =>
        statusScript({ root: spec.root, name, unitName: spec.unitName, healthUrl: spec.health.url }),
      ),
    );
  }
  for (const [name, b] of Object.entries(cfg.backups)) {
    const target: BackupTarget = b.postgres
      ? { engine: "postgres", postgres: { ...b.postgres, password: cfg.dbPasswords[name] ?? "pw" } }
      : { engine: "sqlite", sqlite: b.sqlite! };
    const spec = {
      backupsDir: defaultBackupsDir("/srv/fleet", name),
      engine: target.engine,
      target,
      verifyTables: b.verifyTables,
    };
    const backup = { id: `${name}-20260101T000000Z-none`, time: "2026-01-01T00:00:00Z", releases: [] };
    problems.push(
      step(`backups.${name}: provider check`, () =>
        checkBackupInputs({
          name,
          engine: target.engine,
          ...(b.postgres ? { postgres: target.engine === "postgres" ? target.postgres : undefined } : {}),
          ...(b.sqlite ? { sqlite: b.sqlite } : {}),
          backupsDir: spec.backupsDir,
          keep: b.keep,
          keepDays: b.keepDays,
          verifyTables: b.verifyTables,
          releases: [],
          protectReleases: [],
          restore: b.restore ?? "",
          trigger: b.trigger ?? "",
          stepTimeoutMs: 60_000,
        }),
      ),
      step(`backups.${name}: backupScript`, () => backupScript(spec, backup)),
      step(`backups.${name}: restoreScript`, () => b.restore && restoreScript(spec, b.restore, backup)),
      step(`backups.${name}: listScript`, () => listScript(spec)),
      step(`backups.${name}: pruneScript`, () => pruneScript(spec, [backup.id])),
      step(`backups.${name}: deleteBackupsScript`, () => deleteBackupsScript(spec)),
    );
  }
  for (const [name, h] of Object.entries(cfg.hosts)) {
    const b = h.bootstrap;
    if (!b) continue;
    problems.push(
      step(`hosts.${name}: bootstrapScript`, () =>
        bootstrapScript(
          {
            deployUser: b.deployUser ?? "deploy",
            deployUserKeys: b.deployUserKeys ?? [],
            sudo: b.sudo ?? true,
            root: b.root ?? "/srv/fleet",
            packages: b.packages ?? ["curl"],
            journalMaxUse: b.journalMaxUse ?? "200M",
            timezone: b.timezone ?? "UTC",
          },
          "sha",
        ),
      ),
    );
  }
  for (const [name, img] of Object.entries(cfg.images)) {
    if (img.kind === "docker") {
      // components/golden-image.ts's default repository.
      const repository = img.repository ?? `fleet/${name.toLowerCase().replace(/[^a-z0-9._-]/g, "-")}`;
      problems.push(
        step(`images.${name}: dockerBuildScript`, () =>
          dockerBuildScript({
            dockerfile: img.dockerfile ?? "Dockerfile",
            tags: [imageTag(repository, "0123456789abcdef")],
            buildArgs: img.buildArgs ?? {},
            labels: { "io.fleet.image": name },
          }),
        ),
        step(`images.${name}: renderDockerEnvFile`, () => renderDockerEnvFile(img.validate.env ?? {})),
      );
    } else {
      problems.push(
        step(`images.${name}: provisionScript`, () =>
          provisionScript({
            run: img.provision.run ?? [],
            env: img.provision.env ?? {},
            imageName: name,
            contentHash: "h",
          }),
        ),
        step(`images.${name}: imageCheckScript`, () => imageCheckScript(img.validate.check, "h")),
      );
    }
  }
  return problems.find((p) => p !== undefined);
}
