import { strict as assert } from "assert";
import * as path from "path";
import { formatFieldPath, parseFleetConfig } from "../../config/schema";
import { serviceLayout } from "../../commands/layout";
import { BACKUPS_FOLDER, defaultBackupsDir, isInsideDir } from "../../model/backup";
import { checkServiceInputs } from "../../providers/service/check";
import { startCommand } from "../../source/plan";
import { configProblems, refusedConfigProblems as problems, web1Host, webService } from "../support/config-fixtures";
import { serviceSpec } from "../support/service-inputs";

const good = () => ({ hosts: { web1: web1Host() }, services: { web: webService() } });

/** The good config with `patch` over its service `web`. */
const withService = (patch: Record<string, unknown>) => {
  const cfg = good() as any;
  Object.assign(cfg.services.web, patch);
  return cfg;
};

describe("config/schema", () => {
  it("accepts a minimal config and fills the documented defaults", () => {
    const cfg = parseFleetConfig(good());
    const web1 = cfg.hosts["web1"]!;
    assert.ok(web1.kind === "existing", "kind defaults to existing");
    assert.equal(web1.port, 22);
    assert.equal(cfg.hosts["web1"]!.user, "root");
    const web = cfg.services["web"]!;
    assert.equal(web.keepReleases, 5);
    assert.equal(web.root, "/srv/fleet");
    assert.equal(web.health.expectStatus, 200);
    assert.equal(web.health.timeout, "30s");
    assert.deepEqual(web.env, {});
  });

  it("names the bad field by its path and says what to do", () => {
    const cfg = good();
    (cfg.services.web.health as { url: string }).url = "ftp://nope";
    assert.deepEqual(problems(cfg), ["services.web.health.url: must be an http(s) URL"]);
  });

  it("reports every problem at once", () => {
    const cfg = good() as any;
    cfg.services.web.host = "web9";
    cfg.services.web.keepReleases = 1;
    cfg.services.web.env = { "BAD-NAME": "x", FLEET_RELEASE: "y" };
    cfg.services.web.start = "line1\nline2";
    const p = problems(cfg);
    assert.ok(
      p.some((x) => x.startsWith('services.web.host: unknown host "web9"; fleet:hosts has: web1')),
      p.join("\n"),
    );
    assert.ok(
      p.some((x) => x.startsWith("services.web.keepReleases: must be at least 2")),
      p.join("\n"),
    );
    assert.ok(
      p.some((x) => x.startsWith("services.web.env.BAD-NAME")),
      p.join("\n"),
    );
    assert.ok(
      p.some((x) => x.startsWith("services.web.start: start must be a single line")),
      p.join("\n"),
    );
  });

  it("reports field errors and cross-references together", () => {
    const cfg = good() as any;
    cfg.hosts.web1.port = 70000;
    cfg.services.web.host = "web9";
    assert.deepEqual(problems(cfg), [
      "hosts.web1.port: Too big: expected number to be <=65535",
      'services.web.host: unknown host "web9"; fleet:hosts has: web1',
    ]);
  });

  it("refuses unknown keys (typos) instead of ignoring them", () => {
    const cfg = good() as any;
    cfg.services.web.keepRelease = 3;
    assert.ok(problems(cfg).some((x) => x.includes("keepRelease")));
  });

  it("needs exactly one host key source and exactly one private key source", () => {
    const cfg = good() as any;
    delete cfg.hosts.web1.hostKey;
    delete cfg.hosts.web1.privateKeyFile;
    const p = problems(cfg);
    assert.ok(p.some((x) => x.startsWith("hosts.web1.hostKey: give exactly one of hostKey")));
    assert.ok(p.some((x) => x.startsWith("hosts.web1.privateKeyFile: give exactly one of privateKeyFile")));
    const withSecretKey = { ...good(), privateKeys: { web1: "-----BEGIN" } } as any;
    delete withSecretKey.hosts.web1.privateKeyFile;
    assert.doesNotThrow(() => parseFleetConfig(withSecretKey));
  });

  it("source is exactly one of git and path; paths stay inside the release", () => {
    const cfg = good() as any;
    cfg.services.web.source = { git: "../x", path: "./y" };
    cfg.services.web.install = { run: "pip install", when: ["../secrets"] };
    const p = problems(cfg);
    assert.ok(p.some((x) => x.startsWith("services.web.source: give exactly one of git")));
    assert.ok(p.some((x) => x.startsWith("services.web.install.when.0: must be a path inside the release")));
  });

  it("secretEnv must name configured services and not repeat env keys", () => {
    const cfg = { ...good(), secretEnv: { nope: { A: "1" } } } as any;
    assert.ok(problems(cfg).some((x) => x.startsWith('secretEnv.nope: no service "nope"')));
    const dup = { ...good(), secretEnv: { web: { TOKEN: "s" } } } as any;
    dup.services.web.env = { TOKEN: "plain" };
    assert.ok(problems(dup).some((x) => x.startsWith("services.web.env.TOKEN: is also in fleet:secretEnv")));
  });

  it("a missing fleet:hosts is reported, not crashed on", () => {
    assert.ok(problems({}).some((x) => x.startsWith("hosts:")));
  });
});

describe("config/schema: hostile values (issue #10)", () => {
  it("a NUL byte or a lone surrogate anywhere is reported at its path, keys included", () => {
    assert.deepEqual(problems(withService({ build: "make\0" })), [
      "services.web.build: must not contain a NUL byte (no host can receive one)",
    ]);
    assert.deepEqual(problems(withService({ env: { A: "x\ud800" } })), [
      "services.web.env.A: must be valid Unicode (a lone surrogate has no UTF-8 form)",
    ]);
    const p = problems(withService({ env: { "A\0": "x" } }));
    assert.ok(
      p.includes('services.web.env["A\\u0000"]: must not contain a NUL byte (no host can receive one)'),
      p.join("\n"),
    );
  });

  it("bad names say what a name must be, and odd keys are printed quoted, never raw", () => {
    const cfg = good() as any;
    cfg.hosts["-h"] = cfg.hosts.web1;
    cfg.services["a b\n  - x: ok"] = cfg.services.web;
    const p = problems(cfg);
    assert.ok(
      p.includes("hosts.-h: must be 1-64 letters, digits, '_', '.', '@' or '-', not starting with '.' or '-'"),
      p.join("\n"),
    );
    assert.ok(
      p.some((x) => x.startsWith('services["a b\\n  - x: ok"]: must be 1-64 letters')),
      p.join("\n"),
    );
    assert.ok(
      p.every((x) => !x.includes("\n")),
      "a problem is one line",
    );
  });

  it("names every object has (toString, constructor) are neither names nor references", () => {
    const cfg = good() as any;
    cfg.services.toString = cfg.services.web;
    assert.ok(
      problems(cfg).some((x) => x.startsWith("services.toString: must not be a JavaScript object member name")),
    );
    assert.ok(
      problems(withService({ host: "toString" })).some((x) =>
        x.startsWith('services.web.host: unknown host "toString"'),
      ),
    );
    // An env key that every object "has" is still a plain key, not a duplicate of secretEnv.
    assert.doesNotThrow(() => parseFleetConfig(withService({ env: { constructor: "1" } })));
    assert.ok(
      problems(withService({ env: JSON.parse('{"__proto__": "x"}') })).some((x) =>
        x.startsWith("services.web.env.__proto__:"),
      ),
    );
  });

  it("service and unit names must name a unit systemctl can address as fleet's", () => {
    const cfg = good() as any;
    cfg.services["web@"] = cfg.services.web;
    assert.ok(problems(cfg).some((x) => x.startsWith("services.web@: must not end with '@'")));
    assert.ok(
      problems(withService({ unitName: "cron.service" })).some((x) =>
        x.startsWith('services.web.unitName: must not end with ".service"'),
      ),
    );
    assert.doesNotThrow(() => parseFleetConfig(withService({ unitName: "web@blue" })));
    assert.doesNotThrow(() => parseFleetConfig(withService({ unitName: "web.v2" })));
  });

  it("values systemd, grep or curl cannot take as given are refused before anything runs", () => {
    const unitHostile = "must not contain Unicode noncharacters";
    assert.ok(problems(withService({ env: { A: "x\uffff" } }))[0]!.startsWith(`services.web.env.A: ${unitHostile}`));
    assert.ok(problems(withService({ start: "run \u{10ffff}" }))[0]!.startsWith(`services.web.start: ${unitHostile}`));
    assert.ok(
      problems(withService({ env: { A: "x".repeat(131_072) } }))[0]!.startsWith("services.web.env.A: must be at most"),
    );
    assert.ok(
      problems(withService({ build: "y".repeat(131_072) }))[0]!.startsWith("services.web.build: must be at most"),
    );
    const health = (h: Record<string, unknown>) =>
      problems(withService({ health: { url: "http://127.0.0.1:8080/health", ...h } }));
    assert.deepEqual(health({ bodyContains: "a\nb" }), ["services.web.health.bodyContains: must be a single line"]);
    assert.ok(
      health({ url: "http://127.0.0.1/\u0007" })[0]!.startsWith("services.web.health.url: must be an http(s) URL"),
    );
    assert.ok(health({ url: "http://127.0.0.1/é" })[0]!.startsWith("services.web.health.url: must be an http(s) URL"));
    assert.doesNotThrow(() => parseFleetConfig(withService({ health: { url: "http://127.0.0.1/{a,b}[1]?q=%C3%A9" } })));
  });

  it("limits: one exec's environment, PostgreSQL names, URL length; empty means given, blank start is refused", () => {
    const big = "x".repeat(120_000);
    const env = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`V${i}`, big]));
    assert.ok(
      problems(withService({ env })).some((x) =>
        x.startsWith("services.web.env: with fleet:secretEnv, the environment totals"),
      ),
    );
    assert.ok(
      problems({
        ...good(),
        backups: { db: { host: "web1", postgres: { host: "h", database: "d".repeat(64), user: "u" } } },
        dbPasswords: { db: "p" },
      })[0]!.startsWith("backups.db.postgres.database: must be at most 63 bytes"),
    );
    assert.ok(
      problems(withService({ health: { url: `http://127.0.0.1/${"a".repeat(8200)}` } }))[0]!.startsWith(
        "services.web.health.url: must be at most 8192 characters",
      ),
    );
    // An empty value is reported as empty at its own path, not as "missing" somewhere else.
    assert.deepEqual(problems(withService({ source: { path: "" } })), [
      "services.web.source.path: Too small: expected string to have >=1 characters",
    ]);
    assert.deepEqual(problems(withService({ start: "\t" })), ["services.web.start: start must not be blank"]);
  });

  it("paths inside the release are normalized; provision scripts are relative, one line each", () => {
    for (const when of ["a//b", "./a", "a/", "a/../b"]) {
      assert.ok(
        problems(withService({ install: { run: "x", when: [when] } })).some((x) =>
          x.startsWith("services.web.install.when.0: must be a path inside the release"),
        ),
        when,
      );
    }
    const img = (provision: Record<string, unknown>) =>
      problems({
        ...good(),
        images: {
          gold: {
            kind: "hcloud",
            baseImage: "debian-12",
            serverType: "cx22",
            location: "fsn1",
            provision: { dir: "./p", ...provision },
            validate: { check: "true" },
          },
        },
      });
    assert.ok(img({ run: ["/etc/x"] }).some((x) => x.startsWith("images.gold.provision.run.0: must be a path inside")));
    assert.ok(img({ run: ["a\nb"] }).some((x) => x.startsWith("images.gold.provision.run.0: must be a single line")));
    assert.ok(
      img({ env: { "A-B": "x" } }).some((x) => x.startsWith("images.gold.provision.env.A-B: environment variable")),
    );
    assert.ok(
      img({ env: { A: "x".repeat(140_000) } }).some((x) =>
        x.startsWith("images.gold.provision.env.A: must be at most"),
      ),
    );
  });

  it("an hcloud image: its name labels its snapshots, and its check is a command", () => {
    const config = (name: string, check = "true") => ({
      ...good(),
      images: {
        [name]: {
          kind: "hcloud",
          baseImage: "debian-12",
          serverType: "cx22",
          location: "fsn1",
          provision: { dir: "./p" },
          validate: { check },
        },
      },
    });
    const hcloud = (name: string, check?: string) => problems(config(name, check));
    assert.equal(parseFleetConfig(config("gold")).images["gold"]?.kind, "hcloud");
    for (const name of ["gold-", "gold.", "a@b", "g".repeat(64)])
      assert.deepEqual(
        hcloud(name),
        [
          `images.${name}: must be a Hetzner Cloud label value, as its snapshots are labelled with it: at most 63 letters, digits, '.', '_' or '-', starting and ending with a letter or digit`,
        ],
        name,
      );
    // A name refused as a name is reported once, by the name's own rule.
    assert.deepEqual(hcloud("constructor"), [
      "images.constructor: must not be a JavaScript object member name (constructor, toString, …)",
    ]);
    assert.deepEqual(hcloud("gold", " \t"), [
      "images.gold.validate.check: must be a shell command that checks the new image (exit 0: valid), not blank",
    ]);
  });

  it("backups, pins, keys and docker images: what the providers and builders need, checked up front", () => {
    const backups = (b: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
      problems({ ...good(), backups: { db: { host: "web1", ...b } }, ...extra });
    assert.ok(
      backups({ sqlite: { path: "/data/it's.db" } })[0]!.startsWith("backups.db.sqlite.path: must be an absolute path"),
    );
    assert.ok(
      backups({ sqlite: { path: "/a/../b.db" } })[0]!.startsWith("backups.db.sqlite.path: must not be / or contain"),
    );
    assert.ok(
      backups({ sqlite: { path: "/d.db" }, restore: "x y" })[0]!.startsWith("backups.db.restore: must be a backup id"),
    );
    assert.ok(
      backups({ sqlite: { path: "/d.db" }, verifyTables: ["Users"] })[0]!.startsWith("backups.db.verifyTables.0:"),
    );
    const pg = { postgres: { host: "127.0.0.14", database: "app\ndb", user: "app" } };
    assert.ok(
      backups(pg, { dbPasswords: { db: "pw" } })[0]!.startsWith("backups.db.postgres.database: must be a single line"),
    );
    const pgOk = { postgres: { host: "127.0.0.14", database: "appdb", user: "app" } };
    assert.ok(backups(pgOk, { dbPasswords: { db: "p\nw" } })[0]!.startsWith("dbPasswords.db: must be a single line"));
    assert.ok(
      problems({ ...good(), pins: { web: { releaseId: "abcdef123456", commit: "abc\nresult=ok" } } })[0]!.startsWith(
        "pins.web.commit: must be a commit id",
      ),
    );
    const keys = good() as any;
    keys.hosts.web1.bootstrap = { deployUserKeys: ["ssh-ed25519 AAAAx me\nssh-rsa AAAAother"] };
    assert.ok(problems(keys)[0]!.startsWith("hosts.web1.bootstrap.deployUserKeys.0: must be one OpenSSH public key"));
    const docker = (name: string, extra: Record<string, unknown>) =>
      problems({
        ...good(),
        images: { [name]: { kind: "docker", context: "./c", validate: { url: "http://127.0.0.1:1/" }, ...extra } },
      });
    assert.ok(
      docker("App..2", {}).some((x) => x.startsWith('images.App..2: the default repository "fleet/app..2" is not')),
    );
    assert.ok(
      docker("app", { repository: "a//b" })[0]!.startsWith("images.app.repository: must be a docker repository"),
    );
    assert.ok(docker("app", { buildArgs: { "A=B": "1" } })[0]!.startsWith('images.app.buildArgs["A=B"]: environment'));
    assert.ok(
      docker("app", { validate: { url: "http://127.0.0.1:1/", env: { A: "1\n2" } } })[0]!.startsWith(
        "images.app.validate.env.A: must be a single line",
      ),
    );
  });
});

describe("config/schema: rules shared with the providers (model/rules)", () => {
  it("a zero step or connect timeout is refused: it would fail every step before it starts", () => {
    assert.deepEqual(problems(withService({ stepTimeout: "0s" })), ["services.web.stepTimeout: must be longer than 0"]);
    const cfg = good() as any;
    cfg.hosts.web1.connectTimeout = "0ms";
    cfg.hosts.web1.bootstrap = { stepTimeout: "0.0m" };
    assert.deepEqual(problems(cfg), [
      "hosts.web1.connectTimeout: must be longer than 0",
      "hosts.web1.bootstrap.stepTimeout: must be longer than 0",
    ]);
    assert.doesNotThrow(() =>
      parseFleetConfig(withService({ stepTimeout: "0.5s", health: { ...good().services.web.health, timeout: "0s" } })),
    );
  });

  it("a bootstrap root is fleet's root, as a service's is: never / or escaping with '..'", () => {
    const cfg = good() as any;
    cfg.hosts.web1.bootstrap = { root: "/srv/../etc" };
    assert.deepEqual(problems(cfg), ["hosts.web1.bootstrap.root: must not be / or contain '..'"]);
  });

  it("a PostgreSQL host may be a socket directory, as model/backup.ts documents", () => {
    const backups = (host: string) => ({
      ...good(),
      backups: { db: { host: "web1", postgres: { host, database: "appdb", user: "app" } } },
      dbPasswords: { db: "pw" },
    });
    assert.doesNotThrow(() => parseFleetConfig(backups("/var/run/postgresql")));
    assert.ok(problems(backups("/var/../run"))[0]!.startsWith("backups.db.postgres.host: must be a host name"));
    assert.ok(problems(backups("db host"))[0]!.startsWith("backups.db.postgres.host: must be a host name"));
  });
});

/**
 * `shared:` paths (model/rules/shared.ts, sharedPath) land in other syntaxes: an image's
 * `docker run -v <host>:<container>`, the activation's shell lines, systemd's unit lines. Security
 * issue "a service's own account never becomes root": `data:/etc` became
 * `-v …/shared/data:/etc:/app/data:/etc`, the host's /etc in the container. One rule refuses
 * such a path, in the stack config and in the Service provider's check, before anything runs.
 */

const sharedCfg = (shared: unknown) => ({
  hosts: { web1: web1Host() },
  services: { web: { ...webService(), shared } },
});

const sharedSpec = serviceSpec({
  name: "web",
  connection: { host: "127.0.0.11", port: 22, user: "root", privateKey: "K", hostKey: "ssh-ed25519 AAAA" },
  source: { path: path.resolve(__dirname, "..", "fixtures", "apps", "pyapp") },
  start: "python3 app.py",
  health: { url: "http://127.0.0.1:8080/health" },
});
const providerFailures = (shared: unknown) =>
  checkServiceInputs({ ...sharedSpec, shared } as never).map((f) => `${f.property}: ${f.reason}`);

/** Each bad path, and what its refusal must say (the fix is always the allowed characters). */
const SHARED_REFUSED: readonly [string, RegExp][] = [
  ["data:/etc", /must not contain ':': docker -v reads it as the end of the host path/],
  ["data/x:ro", /must not contain ':'/],
  ["data\n/etc", /must not contain a control character \(found "\\n"\)/],
  ["data\tx", /must not contain a control character \(found "\\t"\)/],
  ["data\rx", /control character/],
  ["a\u0085b", /control character/],
  ["-rf", /no part may start with '-' \(found "-rf"\)/],
  ["data/--help", /no part may start with '-' \(found "--help"\)/],
  ["a,readonly", /must not contain ',': docker --mount/],
  ["a b", /must not contain " "/],
  ["$(id)", /must not contain "\$"/],
  ["a%n", /must not contain "%"/],
  ["a'b", /must not contain "'"/],
  ["a\\b", /must not contain "\\\\"/],
  ["a=b", /must not contain "="/],
  ["dätä", /must not contain "ä"/],
];

const SHARED_ALLOWED = ["data/uploads", "config/extra.ini", ".env.local", "a_b@c+d-e.f", "data-2/x.y", "logs"];

describe("shared: paths are plain relative paths (one rule: config and provider)", () => {
  it("refuses ':', control characters, a part starting with '-', ',' and any other syntax, naming the field and the fix", () => {
    for (const [bad, why] of SHARED_REFUSED) {
      for (const shared of [{ dirs: [bad] }, { files: { [bad]: "" } }]) {
        const found = configProblems(sharedCfg(shared));
        const at = formatFieldPath(["services", "web", "shared", ...("dirs" in shared ? ["dirs", 0] : ["files", bad])]);
        const mine = found.filter((p) => p.startsWith(`${at}: `));
        assert.ok(
          mine.some((p) => why.test(p)),
          `${JSON.stringify(bad)}: ${found.join("\n")}`,
        );
        assert.ok(
          mine.every((p) => /use only letters, digits and _ \. @ \+ - in its parts \(e\.g\. "data\/uploads"/.test(p)),
          `${JSON.stringify(bad)}: the message shows the fix: ${mine.join("\n")}`,
        );
      }
    }
  });

  it("the Service provider's check refuses the same paths at the same fields (direct users of the component)", () => {
    for (const [bad, why] of SHARED_REFUSED) {
      const dirs = providerFailures({ dirs: [bad], files: {} });
      assert.ok(
        dirs.some((f) => f.startsWith("shared.dirs[0]: ") && why.test(f)),
        `${JSON.stringify(bad)}: ${dirs.join("\n")}`,
      );
      const files = providerFailures({ dirs: [], files: { [bad]: "" } });
      assert.ok(files.length > 0 && files.every((f) => f.startsWith("shared.files")), files.join("\n"));
    }
  });

  it("keeps ordinary relative paths, in the config and the provider", () => {
    assert.deepEqual(
      configProblems(sharedCfg({ dirs: SHARED_ALLOWED.slice(0, 3), files: { "x/y.ini": "", ".envrc": "a" } })),
      [],
    );
    assert.deepEqual(
      providerFailures({ dirs: ["data/uploads", ".env.local"], files: { "config/extra.ini": "a=1" } }),
      [],
    );
    for (const p of SHARED_ALLOWED) assert.deepEqual(configProblems(sharedCfg({ dirs: [p] })), [], p);
  });

  it("an allowed path mounts as exactly one host:container pair", () => {
    const start = startCommand(
      { name: "agent", root: "/srv/f", shared: { dirs: SHARED_ALLOWED, files: {}, containerDir: "/app" } },
      { kind: "image", imageId: `sha256:${"a".repeat(64)}` } as never,
      [],
    );
    const mounts = [...start.matchAll(/ -v (\S+)/g)].map((m) => m[1]!);
    assert.equal(mounts.length, SHARED_ALLOWED.length);
    for (const m of mounts) assert.equal(m.split(":").length, 2, m);
  });
});

/**
 * Where a backup set's files live (security issue "a service's own account never becomes
 * root"): the default was `<root>/<name>/backups`, the folder of a service named like the set,
 * which that service's delete (`rm -rf` of its folder) removed, deleteBackupsOnDestroy: false
 * or not. The default is now `<root>/.backups/<name>`, and the stack config refuses a service
 * whose folder holds a set's backups.
 */

const backupCfg = (services: Record<string, Record<string, unknown>>, backupHost = "web1") => ({
  hosts: { web1: web1Host(), web2: { ...web1Host(), address: "127.0.0.12" } },
  services: Object.fromEntries(Object.entries(services).map(([k, v]) => [k, { ...webService(), ...v }])),
  backups: { "aether-db": { host: backupHost, sqlite: { path: "/srv/fleet/aether-db/shared/data/a.db" } } },
});

describe("backup sets live outside every service's folder", () => {
  it("the default directory is in no service's folder under the same root: no service name starts with '.'", () => {
    const dir = defaultBackupsDir("/srv/fleet", "aether-db");
    assert.equal(dir, "/srv/fleet/.backups/aether-db");
    assert.ok(!isInsideDir(dir, serviceLayout("/srv/fleet", "aether-db", "aether-db").dir));
    // A service cannot be called `.backups` (and so own that folder).
    const named = configProblems(backupCfg({ [BACKUPS_FOLDER]: {} }));
    assert.ok(
      named.some((p) => p.includes("not starting with '.' or '-'")),
      named.join("\n"),
    );
  });

  it("a service named like the set, on its host, is accepted: its folder no longer holds the backups", () => {
    assert.deepEqual(configProblems(backupCfg({ "aether-db": {} })), []);
  });

  it("refuses a service whose folder (another root) holds a set's backups, naming the field and the fix", () => {
    for (const [svc, root] of [
      ["fleet", "/srv"],
      ["aether-db", "/srv/fleet/.backups"],
      ["fleet", "/srv/"],
    ] as const) {
      const found = configProblems(backupCfg({ [svc]: { root } }));
      assert.equal(found.length, 1, found.join("\n"));
      assert.match(
        found[0]!,
        new RegExp(
          `^services\\.${svc}\\.root: on host "web1" the folder of services\\.${svc} \\(.*\\) holds the backups of backups\\.aether-db \\(/srv/fleet/\\.backups/aether-db\\), and deleting the service would delete them; give services\\.${svc} another root`,
        ),
      );
    }
    // On another host, or with several hosts none of which is the set's: no overlap.
    assert.deepEqual(configProblems(backupCfg({ fleet: { root: "/srv", host: "web2" } })), []);
    assert.deepEqual(configProblems(backupCfg({ fleet: { root: "/srv", host: undefined, hosts: ["web2"] } })), []);
    assert.equal(
      configProblems(backupCfg({ fleet: { root: "/srv", host: undefined, hosts: ["web2", "web1"] } })).length,
      1,
    );
    // Merely beside it: accepted.
    assert.deepEqual(configProblems(backupCfg({ other: { root: "/srv/fleet/.backups" } })), []);
  });
});
