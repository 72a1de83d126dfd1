import { strict as assert } from "assert";
import * as http from "http";
import type { AddressInfo } from "net";
import { hcloudApi, waitForServer } from "../../providers/image/hcloud-api";

/**
 * The Hetzner Cloud client against a local HTTP server that answers like the API
 * (https://docs.hetzner.cloud/): request shapes, auth, pagination, errors.
 */

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly auth: string;
  readonly body: any;
}

type Route = (method: string, url: URL, body: any) => { status: number; json: unknown } | undefined;

describe("Hetzner Cloud API client", () => {
  let server: http.Server;
  let base: string;
  const seen: Seen[] = [];
  let route: Route = () => undefined;

  before(async () => {
    server = http.createServer((req, res) => {
      let raw = "";
      req.on("data", (d: Buffer) => (raw += d.toString()));
      req.on("end", () => {
        const body = raw ? JSON.parse(raw) : undefined;
        seen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization ?? "", body });
        const answer = route(req.method!, new URL(req.url!, "http://x"), body) ?? {
          status: 404,
          json: { error: { code: "not_found", message: "not found" } },
        };
        res.writeHead(answer.status, { "Content-Type": "application/json" });
        res.end(JSON.stringify(answer.json));
      });
    });
    await new Promise<void>((resolve) => server.listen(18610, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => {
    seen.length = 0;
  });

  it("creates a server with the API's field names and the bearer token; reads id and IPv4", async () => {
    route = (m, u) =>
      m === "POST" && u.pathname === "/v1/servers"
        ? { status: 201, json: { server: { id: 42, public_net: { ipv4: { ip: "203.0.113.9" } } }, action: { id: 1 } } }
        : undefined;
    const api = hcloudApi("tok", base);
    const created = await api.createServer({
      name: "fleet-build-x",
      serverType: "cx22",
      location: "fsn1",
      image: "debian-12",
      sshKeys: [7],
      userData: "#cloud-config\n",
      labels: { "fleet.io/hash": "abc" },
    });
    assert.deepEqual(created, { id: 42, ipv4: "203.0.113.9" });
    assert.equal(seen[0]!.auth, "Bearer tok");
    assert.deepEqual(seen[0]!.body, {
      name: "fleet-build-x",
      server_type: "cx22",
      location: "fsn1",
      image: "debian-12",
      ssh_keys: [7],
      user_data: "#cloud-config\n",
      labels: { "fleet.io/hash": "abc" },
      start_after_create: true,
    });
  });

  it("takes a snapshot with labels, and lists snapshots by label across pages", async () => {
    route = (m, u, body) => {
      if (m === "POST" && u.pathname === "/v1/servers/42/actions/create_image")
        return { status: 201, json: { image: { id: 555 }, action: { id: 9 }, echo: body } };
      if (m === "GET" && u.pathname === "/v1/images") {
        const page = Number(u.searchParams.get("page"));
        return {
          status: 200,
          json: {
            images: [{ id: page * 10, created: "2026-01-01", labels: { "fleet.io/image": "agent" } }],
            meta: { pagination: { next_page: page < 2 ? page + 1 : null } },
          },
        };
      }
      return undefined;
    };
    const api = hcloudApi("tok", base);
    assert.deepEqual(await api.createSnapshot(42, "fleet agent", { "fleet.io/hash": "abc" }), {
      imageId: "555",
      actionId: 9,
    });
    assert.deepEqual(seen[0]!.body, {
      type: "snapshot",
      description: "fleet agent",
      labels: { "fleet.io/hash": "abc" },
    });
    const list = await api.listSnapshots("fleet.io/image=agent");
    assert.deepEqual(
      list.map((s) => s.id),
      ["10", "20"],
    );
    const first = new URL(seen[1]!.url, "http://x");
    assert.equal(first.searchParams.get("type"), "snapshot");
    assert.equal(first.searchParams.get("label_selector"), "fleet.io/image=agent");
  });

  it("a delete of something already gone is fine; other errors name the call, status, code and message", async () => {
    route = (m, u) =>
      m === "POST" && u.pathname === "/v1/ssh_keys"
        ? {
            status: 409,
            json: { error: { code: "uniqueness_error", message: "SSH key with the same fingerprint already exists" } },
          }
        : undefined;
    const api = hcloudApi("tok", base);
    await api.deleteServer(1);
    await api.deleteSshKey(2);
    await api.deleteImage("3");
    assert.equal(await api.imageExists("3"), false);
    await assert.rejects(
      api.createSshKey("k", "ssh-ed25519 AAAA", {}),
      /Hetzner Cloud API POST \/ssh_keys failed: HTTP 409 uniqueness_error: SSH key with the same fingerprint already exists/,
    );
  });

  it("waits for actions (failing with Hetzner's message) and for server states (failing after the timeout)", async () => {
    let polls = 0;
    route = (_m, u) => {
      if (u.pathname === "/v1/actions/1")
        return {
          status: 200,
          json: { action: { status: ++polls < 3 ? "running" : "success", command: "shutdown_server" } },
        };
      if (u.pathname === "/v1/actions/2")
        return {
          status: 200,
          json: {
            action: { status: "error", command: "create_image", error: { code: "server_error", message: "disk busy" } },
          },
        };
      if (u.pathname === "/v1/servers/5") return { status: 200, json: { server: { status: "starting" } } };
      return undefined;
    };
    const api = hcloudApi("tok", base, 1);
    await api.waitAction(1, 5000);
    assert.equal(polls, 3);
    await assert.rejects(api.waitAction(2, 5000), /action 2 \(create_image\) failed: HTTP 200 server_error: disk busy/);
    await assert.rejects(waitForServer(api, 5, "running", 20, 1), /server 5 is "starting", not "running", after 20 ms/);
  });

  it("images in use are the snapshot ids servers were created from", async () => {
    route = (m, u) =>
      m === "GET" && u.pathname === "/v1/servers"
        ? {
            status: 200,
            json: {
              servers: [{ image: { id: 11 } }, { image: null }, { image: { id: 12 } }],
              meta: { pagination: { next_page: null } },
            },
          }
        : undefined;
    assert.deepEqual(await hcloudApi("tok", base).imagesInUse(), ["11", "12"]);
  });
});
