import { strict as assert } from "assert";
import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { promisify } from "util";
import { shq } from "../../commands/quote";
import { connectionFor, loadInventory, postgres, sshRun, type Inventory, type TestHost } from "../support/fleet";

/**
 * The test servers are real servers (issue "Real test servers owned by the project"): systemd
 * as PID 1 and `running`, their own identity, sshd with strict host-key checking, a sudo-capable
 * deploy user, and a PostgreSQL server that answers over the loopback network.
 */
describe("testbed: the real test servers", () => {
  let inv: Inventory;
  before(() => {
    inv = loadInventory();
  });

  /** Runs a command over ssh (strict host-key checking) and returns its trimmed stdout; exit 0 required. */
  async function on(hostName: string, command: string, user = "root"): Promise<string> {
    const r = await sshRun(hostName, command, { user });
    assert.equal(r.code, 0, `ssh ${user}@${hostName} ${command} → exit ${r.code}: ${r.stderr}`);
    return r.stdout.trim();
  }

  /** The same check on every server, concurrently. */
  function everyHost<T>(check: (h: TestHost) => Promise<T>): Promise<T[]> {
    return Promise.all(inv.hosts.map(check));
  }

  it("lists every server on loopback, with a db server for PostgreSQL", () => {
    assert.ok(inv.hosts.length >= 2, "at least two servers");
    for (const h of inv.hosts) assert.match(h.address, /^127\./, `${h.name} is on 127.0.0.0/8`);
    assert.equal(new Set(inv.hosts.map((h) => h.address)).size, inv.hosts.length, "distinct addresses");
    assert.ok(
      inv.hosts.some((h) => h.role === "db"),
      "a db server",
    );
  });

  it("ssh uses the inventory's known_hosts with strict host-key checking", async () => {
    await everyHost(async (h) => {
      // `ssh -G` prints the options ssh would use for this host, after reading ssh_config.
      const { stdout } = await promisify(execFile)("ssh", ["-G", "-F", inv.ssh_config, h.name]);
      assert.match(stdout, /^stricthostkeychecking (true|yes)$/m, `${h.name}: StrictHostKeyChecking`);
      assert.ok(stdout.includes(`\nuserknownhostsfile ${inv.known_hosts}\n`), `${h.name}: known_hosts`);
      assert.ok(stdout.includes(`\nhostname ${h.address}\n`), `${h.name}: address`);
    });
  });

  it("every server: systemd is PID 1 and says `running`", async () => {
    await everyHost(async (h) => {
      const out = await on(
        h.name,
        "systemctl is-system-running; ps -o comm= -p 1; readlink -f /proc/1/exe; systemctl is-active ssh",
      );
      const [state, pid1, exe, ssh] = out.split("\n");
      assert.equal(state, "running", `${h.name}: systemctl is-system-running`);
      assert.equal(pid1, "systemd", `${h.name}: PID 1`);
      assert.match(exe ?? "", /\/systemd$/, `${h.name}: PID 1 binary`);
      assert.equal(ssh, "active", `${h.name}: sshd runs as a systemd unit`);
    });
  });

  it("every server has its own hostname, machine-id and host key", async () => {
    const ids = await everyHost(async (h) => {
      const [hostname, id] = (await on(h.name, "hostname; cat /etc/machine-id")).split("\n");
      assert.equal(hostname, h.name);
      assert.match(id ?? "", /^[0-9a-f]{32}$/, `${h.name}: machine-id`);
      return id;
    });
    assert.equal(new Set(ids).size, inv.hosts.length, `machine-ids differ: ${ids.join(" ")}`);
    const keys = inv.hosts.map((h) => connectionFor(h.name).hostKey);
    assert.equal(new Set(keys).size, inv.hosts.length, "host keys differ");
  });

  it("connectionFor pins the ed25519 host key the server really presents", async () => {
    await everyHost(async (h) => {
      const conn = connectionFor(h.name);
      assert.equal(conn.host, h.address);
      assert.equal(conn.port, h.port);
      assert.equal(conn.user, "root");
      assert.match(conn.hostKey, /^ssh-ed25519 AAAA[0-9A-Za-z+/=]+$/);
      assert.match(conn.privateKey, /BEGIN OPENSSH PRIVATE KEY/);
      const served = (await on(h.name, "cat /etc/ssh/ssh_host_ed25519_key.pub")).split(/\s+/).slice(0, 2).join(" ");
      assert.equal(conn.hostKey, served, `${h.name}: pinned key = served key`);
    });
    assert.equal(connectionFor(inv.hosts[0]!.name, "deploy").user, "deploy");
  });

  it("every server has the tools deploys rely on", async () => {
    const tools = ["python3", "node", "git", "rsync", "sqlite3", "psql", "curl"];
    await everyHost(async (h) => {
      const out = await on(h.name, tools.map((t) => `${t} --version | head -1`).join(" && "));
      assert.equal(out.split("\n").length, tools.length, `${h.name}: ${out}`);
      assert.match(out, /^Python 3\.11\./m, `${h.name}: python3`);
      assert.match(out, /^v\d+\./m, `${h.name}: node`);
    });
  });

  it("every server: user deploy logs in with the key and can sudo", async () => {
    await everyHost(async (h) => {
      assert.equal(await on(h.name, "id -un && sudo -n id -u", "deploy"), "deploy\n0", `${h.name}: deploy + sudo`);
      const r = await sshRun(h.name, "cat /etc/shadow", { user: "deploy" });
      assert.notEqual(r.code, 0, `${h.name}: deploy is not root without sudo`);
      assert.match(r.stderr, /Permission denied/);
    });
  });

  describe("strict host-key checking refuses", () => {
    let dir: string;
    before(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-testbed-"));
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("a server whose key differs from the pinned one", async () => {
      const [a, b] = inv.hosts;
      // a known_hosts that pins a's address to b's key: a real key, but the wrong one
      const wrong = path.join(dir, "known_hosts.wrong");
      fs.writeFileSync(wrong, `${a!.address},${a!.name} ${connectionFor(b!.name).hostKey}\n`);
      const r = await sshRun(a!.name, "echo reached", {
        sshArgs: ["-o", `UserKnownHostsFile=${wrong}`, "-o", "StrictHostKeyChecking=yes"],
      });
      assert.equal(r.code, 255, `refused (stdout: ${r.stdout})`);
      assert.doesNotMatch(r.stdout, /reached/);
      assert.match(r.stderr, /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
    });

    it("a server that is not in known_hosts at all", async () => {
      const empty = path.join(dir, "known_hosts.empty");
      fs.writeFileSync(empty, "");
      const r = await sshRun(inv.hosts[0]!.name, "echo reached", { sshArgs: ["-o", `UserKnownHostsFile=${empty}`] });
      assert.equal(r.code, 255);
      assert.doesNotMatch(r.stdout, /reached/);
      assert.match(r.stderr, /Host key verification failed/);
    });
  });

  describe("PostgreSQL", () => {
    /** psql on a plain server against the db server, over the loopback network. */
    function psql(statements: readonly string[], password = postgres().password) {
      const pg = postgres();
      const client = inv.hosts.find((h) => h.role === "node")!.name;
      return sshRun(client, "bash -s", {
        input: [
          `export PGPASSWORD=${shq(password)} PGCONNECT_TIMEOUT=5`,
          `exec psql -h ${shq(pg.host)} -p ${pg.port} -U ${shq(pg.user)} -d ${shq(pg.database)} ` +
            `-v ON_ERROR_STOP=1 -qtA ${statements.map((sql) => `-c ${shq(sql)}`).join(" ")}`,
        ].join("\n"),
      });
    }

    it("answers queries from another server with the inventory credentials", async () => {
      const r = await psql(["select 1", "select version()", "select current_user || '@' || current_database()"]);
      assert.equal(r.code, 0, r.stderr);
      const [one, version, who] = r.stdout.trim().split("\n");
      assert.equal(one, "1");
      assert.match(version ?? "", /^PostgreSQL 15\./);
      assert.equal(who, `${postgres().user}@${postgres().database}`);
    });

    it("is a systemd service on the db server, listening on its own address only", async () => {
      const db = inv.hosts.find((h) => h.role === "db")!;
      assert.equal(db.address, postgres().host);
      assert.equal(await on(db.name, "systemctl is-active postgresql@15-main"), "active");
      assert.equal(await on(db.name, "cd / && sudo -u postgres psql -tAc 'show listen_addresses'"), db.address);
      // Servers share the host's network stack (other fleets' servers included): what matters is
      // that this port is bound on the db's address and on no wildcard address.
      const port = postgres().port;
      const listen = (await on(db.name, `ss -Hltn ${shq(`sport = :${port}`)} | awk '{print $4}'`)).split("\n");
      assert.ok(listen.includes(`${db.address}:${port}`), `listening on ${db.address}:${port}: ${listen.join(" ")}`);
      for (const l of listen) assert.doesNotMatch(l, /^(0\.0\.0\.0|\*|\[::\]):/, `no wildcard listener: ${l}`);
    });

    it("refuses a wrong password", async () => {
      const r = await psql(["select 1"], "not-the-password");
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /password authentication failed/);
    });
  });
});
