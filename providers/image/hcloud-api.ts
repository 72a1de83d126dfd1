/**
 * The few Hetzner Cloud API calls Packer's hcloud flow needs (https://docs.hetzner.cloud/), over
 * `fetch`: the builder lives and dies inside one update, which declarative `hcloud.Server`
 * resources cannot express (see components/golden-image.ts). Errors are FleetErrors naming the
 * call, the HTTP status and Hetzner's error code and message.
 */
import { fleetError, type FleetError } from "../../model/errors";

export interface ServerCreate {
  readonly name: string;
  readonly serverType: string;
  readonly location: string;
  /** A base image name or a snapshot id. */
  readonly image: string;
  readonly sshKeys: readonly number[];
  readonly userData: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface SnapshotInfo {
  readonly id: string;
  readonly created: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface HcloudApi {
  createSshKey(name: string, publicKey: string, labels: Readonly<Record<string, string>>): Promise<number>;
  deleteSshKey(id: number): Promise<void>;
  createServer(server: ServerCreate): Promise<{ id: number; ipv4: string }>;
  serverStatus(id: number): Promise<string>;
  /** ACPI shutdown (graceful); `poweroff` cuts power. Both resolve with the action id. */
  shutdown(id: number): Promise<number>;
  poweroff(id: number): Promise<number>;
  createSnapshot(
    serverId: number,
    description: string,
    labels: Readonly<Record<string, string>>,
  ): Promise<{ imageId: string; actionId: number }>;
  waitAction(id: number, timeoutMs: number): Promise<void>;
  deleteServer(id: number): Promise<void>;
  setImageLabels(id: string, labels: Readonly<Record<string, string>>): Promise<void>;
  imageExists(id: string): Promise<boolean>;
  listSnapshots(labelSelector: string): Promise<SnapshotInfo[]>;
  /** Snapshot ids servers were created from: "in use", never deleted. */
  imagesInUse(): Promise<string[]>;
  deleteImage(id: string): Promise<void>;
}

/** An API failure: the call, the status, Hetzner's error code and message. */
export function hcloudError(
  call: string,
  status: number,
  code: string,
  message: string,
): FleetError & { status: number; code: string } {
  return fleetError(
    "failure",
    `Hetzner Cloud API ${call} failed: HTTP ${status} ${code}: ${message}`,
    "Check the token (its project and read/write access) and Hetzner's status; deploy again once the API answers.",
    { status, code },
  ) as FleetError & { status: number; code: string };
}

type Json = Record<string, any>;

export function hcloudApi(token: string, baseUrl: string, pollMs = 2000): HcloudApi {
  const base = baseUrl.replace(/\/+$/, "");
  const call = async (method: string, path: string, body?: unknown, allow404 = false): Promise<Json> => {
    const res = await fetch(base + path, {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    let json: Json = {};
    try {
      json = text ? (JSON.parse(text) as Json) : {};
    } catch {
      json = { error: { code: "not_json", message: text.slice(0, 200) } };
    }
    if (res.status === 404 && allow404) return {};
    if (!res.ok)
      throw hcloudError(
        `${method} ${path}`,
        res.status,
        json["error"]?.code ?? "",
        json["error"]?.message ?? text.slice(0, 200),
      );
    return json;
  };
  const pages = async (path: string, key: string): Promise<Json[]> => {
    const all: Json[] = [];
    for (let page: number | null = 1; page;) {
      const json = await call("GET", `${path}${path.includes("?") ? "&" : "?"}per_page=50&page=${page}`);
      all.push(...((json[key] as Json[]) ?? []));
      page = (json["meta"]?.pagination?.next_page as number | null) ?? null;
    }
    return all;
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  return {
    async createSshKey(name, publicKey, labels) {
      return (await call("POST", "/ssh_keys", { name, public_key: publicKey, labels }))["ssh_key"].id as number;
    },
    async deleteSshKey(id) {
      await call("DELETE", `/ssh_keys/${id}`, undefined, true);
    },
    async createServer(s) {
      const json = await call("POST", "/servers", {
        name: s.name,
        server_type: s.serverType,
        location: s.location,
        image: s.image,
        ssh_keys: s.sshKeys,
        user_data: s.userData,
        labels: s.labels,
        start_after_create: true,
      });
      return { id: json["server"].id as number, ipv4: json["server"].public_net?.ipv4?.ip as string };
    },
    async serverStatus(id) {
      return (await call("GET", `/servers/${id}`))["server"].status as string;
    },
    async shutdown(id) {
      return (await call("POST", `/servers/${id}/actions/shutdown`))["action"].id as number;
    },
    async poweroff(id) {
      return (await call("POST", `/servers/${id}/actions/poweroff`))["action"].id as number;
    },
    async createSnapshot(serverId, description, labels) {
      const json = await call("POST", `/servers/${serverId}/actions/create_image`, {
        type: "snapshot",
        description,
        labels,
      });
      return { imageId: String(json["image"].id), actionId: json["action"].id as number };
    },
    async waitAction(id, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const action = (await call("GET", `/actions/${id}`))["action"];
        if (action.status === "success") return;
        if (action.status === "error")
          throw hcloudError(
            `action ${id} (${action.command})`,
            200,
            action.error?.code ?? "",
            action.error?.message ?? "",
          );
        if (Date.now() > deadline)
          throw new Error(
            `Hetzner Cloud action ${id} (${action.command}) still ${action.status} after ${timeoutMs} ms`,
          );
        await sleep(pollMs);
      }
    },
    async deleteServer(id) {
      await call("DELETE", `/servers/${id}`, undefined, true);
    },
    async setImageLabels(id, labels) {
      await call("PUT", `/images/${id}`, { labels });
    },
    async imageExists(id) {
      return "image" in (await call("GET", `/images/${id}`, undefined, true));
    },
    async listSnapshots(labelSelector) {
      const images = await pages(`/images?type=snapshot&label_selector=${encodeURIComponent(labelSelector)}`, "images");
      return images.map((i) => ({
        id: String(i["id"]),
        created: String(i["created"]),
        labels: (i["labels"] ?? {}) as Record<string, string>,
      }));
    },
    async imagesInUse() {
      const servers = await pages("/servers", "servers");
      return servers
        .map((s) => s["image"]?.id)
        .filter((id): id is number => typeof id === "number")
        .map(String);
    },
    async deleteImage(id) {
      await call("DELETE", `/images/${id}`, undefined, true);
    },
  };
}

/** Polls until the server reports `status` ("running", "off"), within `timeoutMs`. */
export async function waitForServer(
  api: HcloudApi,
  id: number,
  status: string,
  timeoutMs: number,
  pollMs = 2000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen = "";
  while (Date.now() <= deadline) {
    seen = await api.serverStatus(id);
    if (seen === status) return;
    await new Promise((r) => setTimeout(r, pollMs));
  }
  throw new Error(`Hetzner Cloud server ${id} is "${seen}", not "${status}", after ${timeoutMs} ms`);
}
