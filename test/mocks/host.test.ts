import { strict as assert } from "assert";
import * as pulumi from "@pulumi/pulumi";
import { Host } from "../../components/host";
import { findByType, findResource, installMocks, isSecret, promiseOf, settle } from "../support/mocks";

const HOST_PUBLIC = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHOSTKEYHOSTKEYHOSTKEYHOSTKEYHOSTKEY";
const LOGIN_PRIVATE = "-----BEGIN OPENSSH PRIVATE KEY-----\nLOGINKEYMATERIAL\n-----END OPENSSH PRIVATE KEY-----\n";

describe("Host (hcloud) under Pulumi mocks", () => {
  let host: Host;

  before(async () => {
    await installMocks({
      newResource: (args) => {
        if (args.type === "pulumi-nodejs:dynamic/fleet:HostKey") {
          return {
            state: {
              publicKey: HOST_PUBLIC,
              privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nHOSTPRIV\n-----END OPENSSH PRIVATE KEY-----",
            },
          };
        }
        if (args.type === "hcloud:index/server:Server") return { state: { ipv4Address: "203.0.113.10" } };
        if (args.type === "hcloud:index/firewall:Firewall") return { id: "4242" };
        return undefined;
      },
    });
    host = new Host("vps", {
      kind: "hcloud",
      serverType: "cx22",
      location: "fsn1",
      image: "123456789", // a snapshot id, as a GoldenImage gives
      labels: { role: "web" },
      sshFrom: ["198.51.100.7/32"],
      inbound: [{ protocol: "tcp", port: "443", sourceIps: ["0.0.0.0/0", "::/0"] }],
      privateKey: pulumi.secret(LOGIN_PRIVATE),
      publicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILOGINPUBLIC fleet",
    });
    await promiseOf(host.connection);
    await settle();
  });

  it("creates the server from the snapshot id, with labels, the SSH key and the firewall", () => {
    const server = findResource("hcloud:index/server:Server", "vps-server");
    assert.equal(server.inputs["image"], "123456789");
    assert.equal(server.inputs["serverType"], "cx22");
    assert.equal(server.inputs["location"], "fsn1");
    assert.deepEqual(server.inputs["labels"], { role: "web", "managed-by": "fleet" });
    assert.deepEqual(server.inputs["sshKeys"], ["vps-sshkey-id"]);
    assert.deepEqual(server.inputs["firewallIds"], [4242]);
  });

  it("registers fleet's login key with Hetzner", () => {
    const key = findResource("hcloud:index/sshKey:SshKey", "vps-sshkey");
    assert.equal(key.inputs["publicKey"], "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILOGINPUBLIC fleet");
  });

  it("the firewall allows SSH only from the configured CIDRs", () => {
    const rules = findResource("hcloud:index/firewall:Firewall", "vps-firewall").inputs["rules"] as {
      port?: string;
      sourceIps: string[];
    }[];
    const ssh = rules.filter((r) => r.port === "22");
    assert.equal(ssh.length, 1);
    assert.deepEqual(ssh[0]!.sourceIps, ["198.51.100.7/32"]);
    assert.ok(rules.every((r) => r.port !== "22" || r.sourceIps.join() === "198.51.100.7/32"));
  });

  it("injects fleet's own host key through cloud-init, as a secret", () => {
    const userData = findResource("hcloud:index/server:Server", "vps-server").inputs["userData"] as Record<
      string,
      unknown
    >;
    assert.ok(userData && "4dabf18193072939515e22adb298388d" in userData, "userData holds a private key: secret");
    const text = String(userData["value"]);
    assert.match(text, /ssh_deletekeys: true/);
    assert.match(text, /HOSTPRIV/);
    assert.match(text, new RegExp(HOST_PUBLIC.replace(/[+/]/g, "\\$&")));
  });

  it("derives the connection from the server's IPv4 and pins the injected key; the connection is secret", async () => {
    assert.equal(await isSecret(host.connection), true);
    const conn = await promiseOf(host.connection);
    assert.deepEqual(
      { ...conn, privateKey: "…" },
      { host: "203.0.113.10", port: 22, user: "root", privateKey: "…", hostKey: HOST_PUBLIC },
    );
    assert.equal(conn.privateKey, LOGIN_PRIVATE);
    assert.equal(await promiseOf(host.address), "203.0.113.10");
    assert.equal(await isSecret(host.address), false);
  });

  it("bootstraps the new server by default, with the connection secret and the address plain", () => {
    const boot = findResource("pulumi-nodejs:dynamic/fleet:HostBootstrap", "vps-bootstrap");
    assert.ok("4dabf18193072939515e22adb298388d" in (boot.inputs["connection"] as object));
    assert.equal(boot.inputs["host"], "203.0.113.10");
    // The spec, not the rendered script (docs/state.md): the provider renders it.
    assert.equal(boot.inputs["script"], undefined);
    assert.equal((boot.inputs["bootstrap"] as { deployUser?: string }).deployUser, "deploy");
    assert.match(String(boot.inputs["scriptSha"]), /^[0-9a-f]{64}$/);
    assert.ok(!JSON.stringify({ ...boot.inputs, connection: null, __provider: null }).includes("LOGINKEYMATERIAL"));
    assert.equal(findByType("pulumi-nodejs:dynamic/fleet:HostKey").length, 1);
  });
});
