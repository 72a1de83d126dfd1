import { strict as assert } from "assert";
import * as path from "path";
import { isConfigInvalid, parseFleetConfig } from "../../config/schema";
import { dockerImageSpec, hcloudImageSpec } from "../../components/golden-image";
import { checkBackupInputs } from "../../providers/backup/check";
import { checkDockerImageInputs, checkHcloudImageInputs } from "../../providers/image/check";
import { checkServiceInputs } from "../../providers/service/check";
import { serviceSpec } from "../support/service-inputs";

/**
 * One rule, one verdict: a value the config schema refuses is refused by the provider's check
 * (which protects direct users of the components), and a value it accepts is accepted, each at
 * its own field. The provider's check used to be a hand-made copy of the schema, and the copies
 * disagreed (issue "one source of truth for each decision").
 */

type Json = Record<string, any>;

const goodConfig = (): Json => ({
  hosts: { web1: { address: "127.0.0.11", privateKeyFile: "/k", hostKey: "ssh-ed25519 AAAA" } },
  services: {
    web: {
      host: "web1",
      source: { path: "./app" },
      start: "python3 app.py",
      install: { run: "pip install -r requirements.txt", when: ["requirements.txt"] },
      build: "make",
      migrate: "./migrate",
      health: { url: "http://127.0.0.1:8080/health", version: { url: "http://127.0.0.1:8080/version" } },
    },
  },
  notify: [{ kind: "webhook", url: "https://hooks.example/fleet" }],
  pins: { web: { releaseId: "abcdef123456", commit: "0123456789abcdef0123456789abcdef01234567" } },
  backups: {
    db: { host: "web1", postgres: { host: "127.0.0.14", database: "appdb", user: "app" }, verifyTables: ["users"] },
  },
  dbPasswords: { db: "pw" },
  images: {
    app: {
      kind: "docker",
      context: "./web",
      repository: "fleet/app",
      buildArgs: { VERSION: "1" },
      exclude: ["data/*.db"],
      validate: { url: "http://127.0.0.1:18650/health", env: { PORT: "18650" } },
    },
    gold: {
      kind: "hcloud",
      baseImage: "debian-12",
      serverType: "cx22",
      location: "fsn1",
      provision: { dir: "./provision", run: ["10-base.sh"], env: { AGENT_ROOT: "/opt/agent" } },
      validate: { check: "test -f /opt/agent/ready" },
    },
  },
});

const goodServiceSpec = (): Json => ({
  ...serviceSpec({
    name: "web",
    connection: { host: "127.0.0.11", port: 22, user: "root", privateKey: "KEY", hostKey: "ssh-ed25519 AAAA" },
    source: { path: path.resolve(__dirname, "..", "fixtures", "apps", "pyapp") },
    start: "python3 app.py",
    build: "make",
    migrate: "./migrate",
    health: { url: "http://127.0.0.1:8080/health", version: { url: "http://127.0.0.1:8080/version" } },
  }),
  install: { run: "pip install -r requirements.txt", when: ["requirements.txt"], hash: "0123456789abcdef" },
  notify: [{ kind: "webhook", url: "https://hooks.example/fleet" }],
  releaseId: "abcdef123456",
  commit: "0123456789abcdef0123456789abcdef01234567",
});

const goodBackupSpec = (): Json => ({
  name: "db",
  connection: { host: "127.0.0.11", port: 22, user: "root", privateKey: "KEY", hostKey: "ssh-ed25519 AAAA" },
  engine: "postgres",
  postgres: { host: "127.0.0.14", port: 5432, database: "appdb", user: "app", password: "pw" },
  backupsDir: "/srv/fleet/.backups/db",
  keep: 5,
  keepDays: 0,
  protectReleases: [],
  verifyTables: ["users"],
  releases: ["r1r1r1"],
  trigger: "",
  restore: "",
  stepTimeoutMs: 600_000,
  deleteBackupsOnDestroy: false,
});

const IMAGES = path.resolve(__dirname, "..", "fixtures", "images");
const conn = { host: "127.0.0.13", port: 22, user: "root", privateKey: "KEY", hostKey: "ssh-ed25519 AAAA" };

/** The inputs GoldenImage registers for the config's images (its own spec builders), as JSON. */
const goodDockerImageSpec = (): Json =>
  JSON.parse(
    JSON.stringify({
      ...dockerImageSpec("app", {
        kind: "docker",
        context: path.join(IMAGES, "web"),
        repository: "fleet/app",
        buildArgs: { VERSION: "1" },
        exclude: ["data/*.db"],
        validate: { url: "http://127.0.0.1:18650/health", env: { PORT: "18650" } },
      }),
      hostConnections: [conn],
      hostAddresses: [conn.host],
    }),
  );

const goodHcloudImageSpec = (): Json =>
  JSON.parse(
    JSON.stringify({
      ...hcloudImageSpec("gold", {
        kind: "hcloud",
        baseImage: "debian-12",
        serverType: "cx22",
        location: "fsn1",
        provision: { dir: path.join(IMAGES, "provision"), run: ["10-base.sh"], env: { AGENT_ROOT: "/opt/agent" } },
        validate: { check: "test -f /opt/agent/ready" },
      }),
      token: "hcloud-token",
    }),
  );

const PROVIDERS = {
  service: { good: goodServiceSpec, check: checkServiceInputs },
  backup: { good: goodBackupSpec, check: checkBackupInputs },
  dockerImage: { good: goodDockerImageSpec, check: checkDockerImageInputs },
  hcloudImage: { good: goodHcloudImageSpec, check: checkHcloudImageInputs },
} as const;

function set(obj: Json, at: readonly string[], value: unknown): Json {
  let o = obj;
  for (const k of at.slice(0, -1)) o = o[k] ??= {};
  o[at[at.length - 1]!] = value;
  return obj;
}

/** The config's problems about `services.web…`/`backups.db…` (none when it is accepted). */
function configProblems(cfg: Json): string[] {
  try {
    parseFleetConfig(cfg);
    return [];
  } catch (err) {
    if (!isConfigInvalid(err)) throw err;
    return [...err.problems];
  }
}

interface Rule {
  readonly rule: string;
  /** The field in config, and in the provider's inputs (the property a failure names). */
  readonly config: readonly string[];
  readonly spec: readonly string[];
  /** Other provider inputs the component fills from the same value (a name is the unit's by default). */
  readonly alsoSpec?: readonly (readonly string[])[];
  readonly provider: keyof typeof PROVIDERS;
  readonly values: readonly unknown[];
}

const long = (n: number) => "x".repeat(n);
const url = (total: number, scheme = "http://") => `${scheme}h/${"a".repeat(total - scheme.length - 2)}`;

const RULES: readonly Rule[] = [
  {
    rule: "unit name",
    config: ["services", "web", "unitName"],
    spec: ["unitName"],
    provider: "service",
    values: [
      "web",
      "web@blue",
      "web.v2",
      "cron.service",
      "ssh.socket",
      "web@",
      "-x",
      "a b",
      long(64),
      long(65),
      "constructor",
    ],
  },
  {
    rule: "service name (its unit's name by default)",
    config: ["services", "$rename"],
    spec: ["name"],
    alsoSpec: [["unitName"]],
    provider: "service",
    values: ["web", "api.v2", "web@", "x.service", "../x", "a b", long(65), "toString"],
  },
  {
    rule: "host address",
    config: ["hosts", "web1", "address"],
    spec: ["connection", "host"],
    alsoSpec: [["host"]],
    provider: "service",
    values: ["127.0.0.11", "web1.internal", "::1", "a b", "a/b", "$(id)", ""],
  },
  {
    rule: "SSH port",
    config: ["hosts", "web1", "port"],
    spec: ["connection", "port"],
    provider: "service",
    values: [22, 2222, 0, 65536, 22.5],
  },
  {
    rule: "SSH user",
    config: ["hosts", "web1", "user"],
    spec: ["connection", "user"],
    provider: "service",
    values: ["root", "deploy", "Root", long(33)],
  },
  {
    rule: "pinned release",
    config: ["pins", "web", "releaseId"],
    spec: ["releaseId"],
    provider: "service",
    values: ["abcdef123456", "d-0123456789abcdef", "i-0123456789ab", "short", "ABCDEF123456", "../../x", long(65)],
  },
  {
    rule: "pinned commit",
    config: ["pins", "web", "commit"],
    spec: ["commit"],
    provider: "service",
    values: ["0123456789abcdef0123456789abcdef01234567", "abcdef123456", "abc\nresult=ok", "-x", long(129)],
  },
  {
    rule: "notification URL",
    config: ["notify", "0", "url"],
    spec: ["notify", "0", "url"],
    provider: "service",
    values: ["https://hooks.example/fleet", "http://127.0.0.1:9/x", "ftp://x", "https://a b", ""],
  },
  {
    rule: "unix user",
    config: ["services", "web", "runAs"],
    spec: ["runAs"],
    provider: "service",
    values: ["app", "_app", "a-b", long(32), long(33), "App", "1app"],
  },
  {
    rule: "service root",
    config: ["services", "web", "root"],
    spec: ["root"],
    provider: "service",
    values: ["/srv/fleet", "/opt/x_y.z", "/", "/a/../b", "relative", "/a b", "/a'b"],
  },
  {
    rule: "env key",
    config: ["services", "web", "env", "$key"],
    spec: ["env", "$key"],
    provider: "service",
    values: ["PORT", "_A", "a1", "A-B", "9A", "A B", "FLEET_X", "A=B"],
  },
  {
    rule: "env value",
    config: ["services", "web", "env", "A"],
    spec: ["env", "A"],
    provider: "service",
    values: ["x", "", "a\nb", "ü", "x\ufffe", "x\u{10ffff}", "x\ud800", "x\0", long(131_069), long(131_070), 1],
  },
  {
    rule: "secret env value",
    config: ["secretEnv", "web", "A"],
    spec: ["secretEnv", "A"],
    provider: "service",
    values: ["x", "x\ufdd0", "x\udc00", long(131_069), long(131_070)],
  },
  {
    rule: "start command",
    config: ["services", "web", "start"],
    spec: ["start"],
    provider: "service",
    values: ["python3 app.py", "", "\t", "a\nb", "a\rb", "run \ufdd0", "run \ud800", long(131_071), long(131_072)],
  },
  {
    rule: "health URL",
    config: ["services", "web", "health", "url"],
    spec: ["health", "url"],
    provider: "service",
    values: [
      "http://127.0.0.1:8080/health",
      "http://127.0.0.1/{a,b}[1]?q=%C3%A9",
      "ftp://nope",
      "http://127.0.0.1/é",
      "http://127.0.0.1/\u0007",
      "http://",
      url(8191),
      url(8192),
      url(8193),
      url(8192, "https://"),
      url(8193, "https://"),
    ],
  },
  {
    rule: "health version URL",
    config: ["services", "web", "health", "version", "url"],
    spec: ["health", "version", "url"],
    provider: "service",
    values: ["http://127.0.0.1:8080/version", "ftp://nope", "http://127.0.0.1/é", url(8192), url(8193)],
  },
  {
    rule: "health version field",
    config: ["services", "web", "health", "version", "field"],
    spec: ["health", "version", "field"],
    provider: "service",
    values: ["commit", "build.sha", ""],
  },
  {
    rule: "health body",
    config: ["services", "web", "health", "bodyContains"],
    spec: ["health", "bodyContains"],
    provider: "service",
    values: ["ok", "ok \"'$", "", "a\nb", "a\rb"],
  },
  {
    rule: "health status",
    config: ["services", "web", "health", "expectStatus"],
    spec: ["health", "expectStatus"],
    provider: "service",
    values: [200, 100, 599, 99, 600, 200.5, "200"],
  },
  {
    rule: "releases kept",
    config: ["services", "web", "keepReleases"],
    spec: ["keepReleases"],
    provider: "service",
    values: [2, 5, 1, 0, 2.5, "5"],
  },
  {
    rule: "install command",
    config: ["services", "web", "install", "run"],
    spec: ["install", "run"],
    provider: "service",
    values: ["pip install -r requirements.txt", "", "a\nb", long(131_071), long(131_072)],
  },
  {
    rule: "install files",
    config: ["services", "web", "install", "when", "0"],
    spec: ["install", "when", "0"],
    provider: "service",
    values: ["requirements.txt", "backend/package.json", "../secrets", "/etc/x", "a//b", "./a", "a/"],
  },
  {
    rule: "build command",
    config: ["services", "web", "build"],
    spec: ["build"],
    provider: "service",
    values: ["make", "a\nb", "", long(131_071), long(131_072)],
  },
  {
    rule: "migrate command",
    config: ["services", "web", "migrate"],
    spec: ["migrate"],
    provider: "service",
    values: ["./migrate", "", long(131_072)],
  },
  {
    rule: "free disk",
    config: ["services", "web", "minFreeDiskMb"],
    spec: ["minFreeDiskMb"],
    provider: "service",
    values: [0, 512, -1, 1.5],
  },
  {
    rule: "backup name",
    config: ["backups", "$rename"],
    spec: ["name"],
    provider: "backup",
    values: ["db", "app.db@2", "../x", "-x", "a b", long(65), "constructor"],
  },
  {
    rule: "postgres host",
    config: ["backups", "db", "postgres", "host"],
    spec: ["postgres", "host"],
    provider: "backup",
    values: ["127.0.0.14", "db.internal", "::1", "/var/run/postgresql", "db host", "a\nb", ""],
  },
  {
    rule: "postgres port",
    config: ["backups", "db", "postgres", "port"],
    spec: ["postgres", "port"],
    provider: "backup",
    values: [5432, 1, 65535, 0, 65536, 5432.5, "5432"],
  },
  {
    rule: "postgres database",
    config: ["backups", "db", "postgres", "database"],
    spec: ["postgres", "database"],
    provider: "backup",
    values: ["appdb", "my db", "d".repeat(63), "d".repeat(64), "é".repeat(32), "app\ndb", "app\rdb", ""],
  },
  {
    rule: "postgres user",
    config: ["backups", "db", "postgres", "user"],
    spec: ["postgres", "user"],
    provider: "backup",
    values: ["app", "u".repeat(63), "u".repeat(64), "a\rb", ""],
  },
  {
    rule: "postgres password",
    config: ["dbPasswords", "db"],
    spec: ["postgres", "password"],
    provider: "backup",
    values: ["pw", "p:w\\", "p\nw", "p\rw", ""],
  },
  {
    rule: "backups kept",
    config: ["backups", "db", "keep"],
    spec: ["keep"],
    provider: "backup",
    values: [0, 5, -1, 1.5],
  },
  {
    rule: "backup age",
    config: ["backups", "db", "keepDays"],
    spec: ["keepDays"],
    provider: "backup",
    values: [0, 30, -1, 1.5],
  },
  {
    rule: "verified table",
    config: ["backups", "db", "verifyTables", "0"],
    spec: ["verifyTables", "0"],
    provider: "backup",
    values: ["users", "public.users", "Users", "a;b", "a.b.c"],
  },
  {
    rule: "backup id to restore",
    config: ["backups", "db", "restore"],
    spec: ["restore"],
    provider: "backup",
    values: ["", "db-20260101T000000Z-r1r1r1", "db-20260101T000000Z-a+b", "x y", "../../etc/passwd", "-x"],
  },
  {
    rule: "hcloud image name (its snapshots' label value)",
    config: ["images", "$rename:gold"],
    spec: ["name"],
    provider: "hcloudImage",
    values: [
      "gold",
      "vm.agent_2",
      "Gold-1",
      long(63),
      "gold-",
      "gold.",
      "gold_",
      "a@b",
      long(64),
      "-x",
      "a b",
      "constructor",
    ],
  },
  {
    rule: "docker image name",
    config: ["images", "$rename:app"],
    spec: ["name"],
    provider: "dockerImage",
    values: ["app", "web@1", "app.v2", "app-", long(64), long(65), "-x", "a b", "constructor", "toString"],
  },
  {
    rule: "image check command",
    config: ["images", "gold", "validate", "check"],
    spec: ["check"],
    provider: "hcloudImage",
    values: ["test -f /opt/agent/ready", "systemctl is-active agent\ncurl -fsS localhost", "", " ", "\t\n"],
  },
  {
    rule: "image validation URL",
    config: ["images", "app", "validate", "url"],
    spec: ["validate", "url"],
    provider: "dockerImage",
    values: [
      "http://127.0.0.1:18650/health",
      "http://127.0.0.1/{a,b}[1]?q=%C3%A9",
      "ftp://nope",
      "http://127.0.0.1/é",
      "http://127.0.0.1/\u0007",
      "http://",
      url(8192),
      url(8193),
      url(8193, "https://"),
    ],
  },
  {
    rule: "image validation status",
    config: ["images", "app", "validate", "expectStatus"],
    spec: ["validate", "expectStatus"],
    provider: "dockerImage",
    values: [200, 204, 99, 600, 200.5, "200"],
  },
  {
    rule: "image validation env value",
    config: ["images", "app", "validate", "env", "PORT"],
    spec: ["validate", "env", "PORT"],
    provider: "dockerImage",
    values: ["18650", "", "a\nb", "a\rb", long(131_066), long(131_067)],
  },
  {
    rule: "image validation env key",
    config: ["images", "app", "validate", "env", "$key"],
    spec: ["validate", "env", "$key"],
    provider: "dockerImage",
    values: ["APP_HOST", "_A", "A-B", "9A", "A B"],
  },
  {
    rule: "docker repository",
    config: ["images", "app", "repository"],
    spec: ["repository"],
    provider: "dockerImage",
    values: ["fleet/app", "registry.local/team/app", "a_b", "Fleet/App", "a//b", "/a", "a:b", ""],
  },
  {
    rule: "docker build arg name",
    config: ["images", "app", "buildArgs", "$key"],
    spec: ["buildArgs", "$key"],
    provider: "dockerImage",
    values: ["VERSION", "_A", "A-B", "9A", "A=B"],
  },
  {
    rule: "docker context exclude pattern (after the default .git)",
    config: ["images", "app", "exclude", "0"],
    spec: ["exclude", "1"],
    provider: "dockerImage",
    values: ["data/*.db", "./build", "", "/srv/app/x", "!keep", "a/../b", "a\nb"],
  },
  {
    rule: "docker images kept",
    config: ["images", "app", "keep"],
    spec: ["keep"],
    provider: "dockerImage",
    values: [2, 3, 1, 0, 2.5, "3"],
  },
  {
    rule: "hcloud snapshots kept",
    config: ["images", "gold", "keep"],
    spec: ["keep"],
    provider: "hcloudImage",
    values: [2, 4, 1, 0, 2.5, "3"],
  },
  {
    rule: "provision script",
    config: ["images", "gold", "provision", "run", "0"],
    spec: ["run", "0"],
    provider: "hcloudImage",
    values: ["10-base.sh", "files/x.sh", "../x", "/etc/x", "a\nb", "a//b", ""],
  },
  {
    rule: "provision env value",
    config: ["images", "gold", "provision", "env", "AGENT_ROOT"],
    spec: ["env", "AGENT_ROOT"],
    provider: "hcloudImage",
    values: ["/opt/agent", "a\nb", long(131_060), long(131_061)],
  },
  {
    rule: "provision env key",
    config: ["images", "gold", "provision", "env", "$key"],
    spec: ["env", "$key"],
    provider: "hcloudImage",
    values: ["DEBUG", "A-B", "9A"],
  },
  ...(["baseImage", "serverType", "location"] as const).map((field): Rule => ({
    rule: `hcloud ${field}`,
    config: ["images", "gold", field],
    spec: [field],
    provider: "hcloudImage",
    values: ["x1", ""],
  })),
];

/** Renames the one entry of `entries`. */
function renameOnly(entries: Json, to: string): void {
  const [from] = Object.keys(entries);
  const entry = entries[from!];
  delete entries[from!];
  entries[to] = entry;
}

/** What is filed under an entry's name elsewhere (a backup's password, a service's pin). */
const FILED_ELSEWHERE: Record<string, string> = { backups: "dbPasswords", services: "pins" };

/**
 * Puts `value` at `at`: "$key" adds a key named by the value, "$rename" renames the one entry
 * there, "$rename:<name>" the entry of that name.
 */
function withValue(base: Json, at: readonly string[], value: unknown): Json {
  const i = at.findIndex((k) => k.startsWith("$"));
  if (i < 0) return set(base, at, value);
  let o = base;
  for (const k of at.slice(0, i)) o = o[k] ??= {};
  if (at[i] === "$key") o[value as string] = "1";
  else if (at[i]!.startsWith("$rename:")) {
    const from = at[i]!.slice("$rename:".length);
    const entry = o[from];
    delete o[from];
    o[String(value)] = entry;
  } else {
    // The entry moves, with what is filed under its name elsewhere.
    for (const entries of [o, base[FILED_ELSEWHERE[at[0]!]!]]) renameOnly(entries, String(value));
  }
  return base;
}

/** The property a provider failure must name: Pulumi's path (`env.PORT`, `env["A B"]`, `when[0]`). */
const specProperty = (at: readonly string[], value: unknown) =>
  at
    .map((k) => (k === "$key" ? String(value) : k))
    .map((k, i) =>
      /^\d+$/.test(k)
        ? `[${k}]`
        : /^[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*$/.test(k)
          ? `${i ? "." : ""}${k}`
          : `[${JSON.stringify(k)}]`,
    )
    .join("");

describe("one rule, one verdict: the config schema and the providers' checks agree", () => {
  it("the good config and the good provider inputs are accepted", () => {
    assert.deepEqual(configProblems(goodConfig()), []);
    assert.deepEqual(checkServiceInputs(goodServiceSpec()), []);
    assert.deepEqual(checkBackupInputs(goodBackupSpec()), []);
    assert.deepEqual(checkDockerImageInputs(goodDockerImageSpec()), []);
    assert.deepEqual(checkHcloudImageInputs(goodHcloudImageSpec()), []);
  });

  for (const r of RULES) {
    it(`${r.rule}: ${r.config.join(".")} and the ${r.provider} provider's ${r.spec.join(".")}`, () => {
      const disagreements: string[] = [];
      for (const value of r.values) {
        const configRefused = configProblems(withValue(goodConfig(), r.config, value)).length > 0;
        const provider = PROVIDERS[r.provider];
        let spec = withValue(provider.good(), r.spec, value);
        for (const at of r.alsoSpec ?? []) spec = withValue(spec, at, value);
        const failures = provider.check(spec);
        const shown =
          typeof value === "string" && value.length > 40
            ? `${JSON.stringify(value.slice(0, 12))}… (${value.length} chars)`
            : JSON.stringify(value);
        if (configRefused !== failures.length > 0)
          disagreements.push(
            `${shown}: config ${configRefused ? "refuses" : "accepts"}, provider ${failures.length > 0 ? "refuses" : "accepts"}`,
          );
        // A refusal names the field, as Pulumi shows it (list items as [i]).
        const expected = [r.spec, ...(r.alsoSpec ?? [])].map((at) => specProperty(at, value));
        if (failures.length > 0 && !failures.every((f) => expected.includes(f.property)))
          disagreements.push(`${shown}: provider names ${failures.map((f) => f.property).join(", ")}, not ${expected}`);
      }
      assert.deepEqual(disagreements, [], `${r.rule}:\n  ${disagreements.join("\n  ")}`);
    });
  }

  it("the whole environment's size: env and secretEnv together", () => {
    const big = long(120_000);
    const env = Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`V${i}`, big]));
    const secretEnv = Object.fromEntries(Array.from({ length: 4 }, (_, i) => [`S${i}`, big]));
    const cfg = goodConfig();
    cfg["services"].web.env = env;
    cfg["secretEnv"] = { web: secretEnv };
    assert.ok(configProblems(cfg).some((p) => p.startsWith("services.web.env: with fleet:secretEnv")));
    const spec = { ...goodServiceSpec(), env, secretEnv };
    assert.deepEqual(
      checkServiceInputs(spec).map((f) => f.property),
      ["env"],
    );
    delete cfg["secretEnv"];
    assert.deepEqual(configProblems(cfg), []);
    assert.deepEqual(checkServiceInputs({ ...spec, secretEnv: {} }), []);
  });
});
