import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { shippedProvider } from "../../providers/ship";
import { releaseFiles } from "../../source/files";
import { DEFAULT_EXCLUDES } from "../../source/resolve";
import { connectionFor, sshRun } from "../support/fleet";
import { ProviderHost, SimulatedResource } from "../support/provider-host";
import { serviceInputs } from "../support/service-inputs";

// What ships in state: the bundled provider (providers/ship.ts), as the components register it.
const serviceProvider = shippedProvider("service");

const PYAPP = path.resolve(__dirname, "..", "fixtures", "apps", "pyapp");
const ROOT = "/srv/fleet-test-path";
const PORT = 18300;
const EXCLUDE = ["data/*.db", "*.log"];

/** source/: a path source with excludes, deployed through the provider host to a real server. */
describe("a path source with excludes on a real server", function () {
  this.timeout(120_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-pathsrc-"));
  // The inventory exists once the root hook has started the servers: read it in before().
  let connection: ReturnType<typeof connectionFor>;
  let host: ProviderHost;
  let resource: SimulatedResource;
  const inputs = () =>
    serviceInputs({
      name: "pathsrc",
      connection,
      root: ROOT,
      source: { path: dir, exclude: EXCLUDE },
      start: "python3 app.py",
      env: { APP_HOST: connection.host, APP_PORT: String(PORT) },
      health: { url: `http://${connection.host}:${PORT}/api/health`, timeout: "8s", interval: "50ms" },
    });

  before(async () => {
    connection = connectionFor("web2");
    fs.copyFileSync(path.join(PYAPP, "app.py"), path.join(dir, "app.py"));
    for (const [f, content] of Object.entries({
      "data/app.db": "rows",
      "data/schema.sql": "create table t (x)",
      "data/sub/kept.db": "* stops at /",
      "logs/run.log": "x",
      ".env.example": "APP_PORT=",
      "node_modules/dep/index.js": "x",
    })) {
      fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      fs.writeFileSync(path.join(dir, f), content);
    }
    fs.symlinkSync("data/schema.sql", path.join(dir, "schema-link"));
    host = await ProviderHost.start();
    resource = new SimulatedResource(host, serviceProvider, {
      name: "pathsrc",
      additionalSecretOutputs: ["connection", "secretEnv"],
    });
  });
  after(async () => {
    await resource?.destroy().catch(() => undefined);
    await host?.stop();
    await sshRun("web2", `rm -rf ${ROOT}`);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("the host gets exactly the hashed files; a database write is no change, a code change is", async () => {
    const { op, state } = await resource.up(inputs());
    assert.equal(op, "create");
    const listed = await sshRun("web2", `cd ${ROOT}/pathsrc/current && find . -type f -o -type l`);
    assert.equal(listed.code, 0, listed.stderr);
    const onHost = listed.stdout
      .split("\n")
      // What fleet itself writes into a release (commands/service.ts): REVISION and .fleet-* markers.
      .filter((l) => l && l !== "./REVISION" && !l.startsWith("./.fleet-"))
      .map((l) => l.slice(2))
      .sort();
    assert.deepEqual(onHost, releaseFiles(dir, [...DEFAULT_EXCLUDES, ...EXCLUDE]));
    assert.deepEqual(onHost, [".env.example", "app.py", "data/schema.sql", "data/sub/kept.db", "schema-link"]);
    const link = await sshRun("web2", `readlink ${ROOT}/pathsrc/current/schema-link`);
    assert.equal(link.stdout.trim(), "data/schema.sql", "a symlink arrives as a symlink");

    fs.writeFileSync(path.join(dir, "data", "app.db"), "rows, and more rows");
    fs.writeFileSync(path.join(dir, "logs", "run.log"), "more log");
    assert.equal((await resource.preview(inputs())).op, "same", "an excluded file's write is not a release");

    fs.appendFileSync(path.join(dir, "app.py"), "\n# a change\n");
    const next = await resource.up(inputs());
    assert.equal(next.op, "update");
    assert.notEqual(next.state!.plainOutputs["releaseId"], state!.plainOutputs["releaseId"]);
  });
});
