import { strict as assert } from "assert";
import { shippedProvider } from "../../providers/ship";
import { execFileSync } from "child_process";
import * as crypto from "crypto";
import * as path from "path";
import { bootstrapSpec, type BootstrapArgs } from "../../components/host";
import type { SshConnection } from "../../transport/connection";
import { connectionFor, sshRun } from "../support/fleet";
import { ProviderHost, SimulatedResource, secret, type Props } from "../support/provider-host";
import { serviceInputs } from "../support/service-inputs";

// What ships in state: the bundled provider (providers/ship.ts), as the components register it.
const serviceProvider = shippedProvider("service");
const hostBootstrapProvider = shippedProvider("hostBootstrap");

/**
 * The Host bootstrap provider on real servers, through Pulumi's provider host: idempotent
 * bootstrap, facts, pinning, a host that drops off mid-way, a bastion; and the Service's
 * low-disk refusal.
 */

const BOOT_ROOT = "/srv/fleet-boot";
const USER = "fleetops";

/** A stand-in for dpkg-query, first on root's PATH, that makes the packages step slow. */
const SLOW_DPKG = "/usr/local/bin/dpkg-query";

function bootstrapInputs(connection: SshConnection, args: BootstrapArgs): Props {
  const spec = bootstrapSpec({ root: BOOT_ROOT, deployUser: USER, ...args });
  const scriptSha = crypto.createHash("sha256").update(JSON.stringify(spec)).digest("hex");
  return {
    connection: secret(connection),
    host: connection.host,
    bootstrap: spec,
    scriptSha,
    readyTimeoutMs: 10_000,
    stepTimeoutMs: 60_000,
  };
}

async function sh(hostName: string, command: string): Promise<string> {
  const r = await sshRun(hostName, command);
  if (r.code !== 0) throw new Error(`ssh ${hostName} ${command} → exit ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Puts a server back as the image had it: no fleetops user, UTC, no fleet journald drop-in. */
async function undoBootstrap(hostName: string): Promise<void> {
  await sh(
    hostName,
    `userdel -r ${USER} 2>/dev/null; rm -f /etc/sudoers.d/90-fleet-${USER} /etc/systemd/journald.conf.d/50-fleet.conf /var/lib/fleet/bootstrap.sha256; ` +
      `rm -rf ${BOOT_ROOT}; ln -sfn /usr/share/zoneinfo/Etc/UTC /etc/localtime; echo Etc/UTC > /etc/timezone; systemctl restart systemd-journald; true`,
  );
}

describe("Host bootstrap on real servers (through Pulumi's provider host)", function () {
  this.timeout(120_000);
  let host: ProviderHost;

  before(async () => {
    host = await ProviderHost.start();
    await undoBootstrap("web3");
  });
  after(async () => {
    await undoBootstrap("web3");
    await host.stop();
  });

  it("bootstraps a server, then a second run changes nothing", async () => {
    const resource = new SimulatedResource(host, hostBootstrapProvider, { name: "web3-bootstrap" });
    const args = {
      deployUserKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFLEETTESTKEYFLEETTESTKEYFLEETTESTKEYXX ops"],
      packages: ["curl", "sqlite3"],
      journalMaxUse: "100M",
      timezone: "Europe/Berlin",
    };
    const first = await resource.up(bootstrapInputs(connectionFor("web3"), args));
    assert.equal(first.op, "create");
    const changed = first.state!.plainOutputs["changed"] as string[];
    for (const step of ["user", "ssh-dir", "authorized-keys", "sudo", "root", "journald", "timezone"]) {
      assert.ok(changed.includes(step), `first run changes ${step}; changed: ${changed.join(",")}`);
    }
    assert.ok(!changed.includes("packages"), "curl and sqlite3 are already there");
    assert.equal(await sh("web3", `id -un ${USER}`), USER);
    assert.equal(await sh("web3", `stat -c '%a %U' /home/${USER}/.ssh/authorized_keys`), `600 ${USER}`);
    assert.equal(await sh("web3", `sudo -n -u ${USER} sudo -n true && echo sudo-ok`), "sudo-ok");
    assert.equal(await sh("web3", "readlink /etc/localtime"), "/usr/share/zoneinfo/Europe/Berlin");
    assert.match(await sh("web3", "cat /etc/systemd/journald.conf.d/50-fleet.conf"), /SystemMaxUse=100M/);
    assert.equal(await sh("web3", `test -d ${BOOT_ROOT} && echo yes`), "yes");

    // The second run: the same script, run again on the host (as an update would), changes nothing.
    const before = await sh(
      "web3",
      `stat -c '%Y %i' /etc/passwd /home/${USER}/.ssh/authorized_keys /etc/systemd/journald.conf.d/50-fleet.conf /etc/sudoers.d/90-fleet-${USER}`,
    );
    // Same script, but a different recorded sha, so the provider runs it again (an update).
    const again = await resource.up({ ...bootstrapInputs(connectionFor("web3"), args), scriptSha: "force-a-rerun" });
    assert.equal(again.op, "update");
    assert.deepEqual(again.state!.plainOutputs["changed"], [], "a second run changes nothing");
    assert.equal(
      await sh(
        "web3",
        `stat -c '%Y %i' /etc/passwd /home/${USER}/.ssh/authorized_keys /etc/systemd/journald.conf.d/50-fleet.conf /etc/sudoers.d/90-fleet-${USER}`,
      ),
      before,
    );
    // And an unchanged script is no update at all.
    await resource.up(bootstrapInputs(connectionFor("web3"), args));
    assert.equal((await resource.preview(bootstrapInputs(connectionFor("web3"), args))).op, "same");
  });

  it("reads the facts correctly", async () => {
    const resource = new SimulatedResource(host, hostBootstrapProvider, { name: "web2-facts" });
    const { state } = await resource.up(
      bootstrapInputs(connectionFor("web2"), { deployUser: "deploy", root: "/srv/fleet-test" }),
    );
    const facts = state!.plainOutputs["facts"] as Record<string, unknown>;
    assert.equal(facts["os"], await sh("web2", ". /etc/os-release; echo $PRETTY_NAME"));
    assert.equal(facts["osId"], "debian");
    assert.equal(facts["osVersion"], "12");
    assert.equal(facts["arch"], await sh("web2", "uname -m"));
    assert.equal(facts["systemd"], (await sh("web2", "systemctl --version | head -1")).split(" ")[1]);
    const free = Number(await sh("web2", "df -Pm / | awk 'NR==2{print $4}'"));
    assert.ok(Math.abs((facts["diskFreeMb"] as number) - free) < 200, `${facts["diskFreeMb"]} vs ${free}`);
    assert.ok((facts["memoryMb"] as number) > 100);
    // refresh reads them again, and a bootstrap marker removed on the host shows as drift.
    await sh("web2", "mv /var/lib/fleet/bootstrap.sha256 /tmp/fleet-marker");
    const refreshed = await resource.refresh();
    assert.equal(refreshed!.plainOutputs["scriptSha"], "not-bootstrapped");
    assert.equal(
      (
        await resource.preview(
          bootstrapInputs(connectionFor("web2"), { deployUser: "deploy", root: "/srv/fleet-test" }),
        )
      ).op,
      "update",
    );
    await sh("web2", "mv /tmp/fleet-marker /var/lib/fleet/bootstrap.sha256");
  });

  it("refuses a host whose key is not the pinned one, before running anything", async () => {
    const resource = new SimulatedResource(host, hostBootstrapProvider, { name: "web3-wrong-key" });
    const wrong = { ...connectionFor("web3"), hostKey: connectionFor("web1").hostKey };
    await assert.rejects(
      resource.up(bootstrapInputs(wrong, { deployUser: "fleetnokey" })),
      /host key mismatch: the host presented SHA256:\S+, but SHA256:\S+ is pinned/,
    );
    assert.equal(await sh("web3", "id fleetnokey >/dev/null 2>&1 && echo exists || echo none"), "none", "nothing ran");
  });

  it("a host that drops off mid-bootstrap is reported with the step that failed", async () => {
    const resource = new SimulatedResource(host, hostBootstrapProvider, { name: "web3-drop" });
    // The packages step is slowed on the host (dpkg-query, first on root's PATH, waits 5 s);
    // the connection is cut meanwhile.
    await sh(
      "web3",
      `printf '#!/bin/sh\\nsleep 5\\nexec /usr/bin/dpkg-query "$@"\\n' > ${SLOW_DPKG} && chmod 755 ${SLOW_DPKG}`,
    );
    const slowed = bootstrapInputs(connectionFor("web3"), {});
    try {
      const cut = (async () => {
        await new Promise((r) => setTimeout(r, 1500));
        // Kill the sshd session processes serving root: the network path to the host is gone.
        await sshRun("web3", "pkill -KILL -f 'sshd: root@notty' || true");
      })();
      await assert.rejects(resource.up(slowed), (err: Error) => {
        assert.match(err.message, /step "bootstrap" failed: the connection closed before the command finished/);
        assert.match(err.message, /fleet-phase: packages/, "the last step reached is in the evidence");
        return true;
      });
      await cut;
    } finally {
      await sh("web3", `rm -f ${SLOW_DPKG}`);
    }
    assert.equal(resource.state, undefined, "nothing is recorded for a bootstrap that did not finish");
  });

  it("reaches a host through a bastion (ssh -J): only the bastion gets a direct connection", async () => {
    const fresh = await ProviderHost.start();
    try {
      const resource = new SimulatedResource(fresh, hostBootstrapProvider, { name: "web2-via-web1" });
      const via = { ...connectionFor("web2"), jump: connectionFor("web1") };
      const { state } = await resource.up(bootstrapInputs(via, { deployUser: "deploy", root: "/srv/fleet-test" }));
      assert.equal((state!.plainOutputs["facts"] as Record<string, unknown>)["osId"], "debian");
      const count = (addr: string) =>
        execFileSync("ss", ["-Htnp", "state", "established", "dst", `${addr}:22`], { encoding: "utf8" })
          .split("\n")
          .filter((l) => l.includes(`pid=${fresh.pid},`)).length;
      assert.equal(count("127.0.0.11"), 1, "one connection to the bastion");
      assert.equal(count("127.0.0.12"), 0, "none straight to the target");
    } finally {
      await fresh.stop();
    }
  });
});

describe("Service low-disk refusal (real server)", function () {
  this.timeout(60_000);
  it("refuses to deploy when the root's free disk is below the threshold, giving both numbers", async () => {
    const host = await ProviderHost.start();
    try {
      const resource = new SimulatedResource(host, serviceProvider, { name: "lowdisk" });
      const inputs = serviceInputs({
        name: "lowdisk",
        connection: connectionFor("web1"),
        root: "/srv/fleet-test",
        source: { path: path.resolve(__dirname, "..", "fixtures", "apps", "pyapp") },
        start: "python3 app.py",
        health: { url: "http://127.0.0.11:18999/api/health" },
        minFreeDiskMb: 100_000_000,
      });
      await assert.rejects(
        resource.up(inputs),
        /only \d+ MiB free on \/srv\S*; fleet needs at least 100000000 MiB there to deploy \(minFreeDisk\)/,
      );
      assert.equal(
        await sh("web1", "test -e /srv/fleet-test/lowdisk && echo yes || echo no"),
        "no",
        "nothing was written",
      );
    } finally {
      await host.stop();
    }
  });
});
