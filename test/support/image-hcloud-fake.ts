/**
 * An in-memory Hetzner Cloud for the hcloud GoldenImage orchestration: the HcloudApi interface
 * over maps, recording every call in order (`log`), so tests assert the Packer flow's wiring
 * (builder → provision → snapshot → cleanup) and what is left behind.
 */
import type { HcloudApi, ServerCreate, SnapshotInfo } from "../../providers/image/hcloud-api";
import type { HcloudBuildDeps } from "../../providers/image/hcloud-build";
import type { SshConnection } from "../../transport/connection";
import type { ExecResult } from "../../transport/ssh";

export interface FakeServer extends ServerCreate {
  readonly id: number;
  readonly ipv4: string;
  status: string;
}

export class FakeHcloud implements HcloudApi {
  readonly log: string[] = [];
  readonly keys = new Map<number, { name: string; publicKey: string; labels: Record<string, string> }>();
  readonly servers = new Map<number, FakeServer>();
  readonly snapshots = new Map<
    string,
    { id: string; created: string; labels: Record<string, string>; fromServer: number }
  >();
  /** Every server ever created, deleted or not. */
  readonly created: FakeServer[] = [];
  /** When true, a shutdown leaves the server running (so fleet must cut the power). */
  ignoreShutdown = false;
  private next = 100;

  constructor(existing: { id: string; labels: Record<string, string> }[] = [], inUseBy: string[] = []) {
    for (const s of existing) this.snapshots.set(s.id, { ...s, created: "2020-01-01T00:00:00Z", fromServer: 0 });
    for (const image of inUseBy) {
      const id = this.next++;
      this.servers.set(id, {
        id,
        ipv4: "203.0.113.1",
        status: "running",
        name: `app-${id}`,
        serverType: "cx22",
        location: "fsn1",
        image,
        sshKeys: [],
        userData: "",
        labels: {},
      });
    }
  }

  async createSshKey(name: string, publicKey: string, labels: Readonly<Record<string, string>>) {
    const id = this.next++;
    this.keys.set(id, { name, publicKey, labels: { ...labels } });
    this.log.push(`createSshKey ${id}`);
    return id;
  }
  async deleteSshKey(id: number) {
    this.keys.delete(id);
    this.log.push(`deleteSshKey ${id}`);
  }
  async createServer(s: ServerCreate) {
    const id = this.next++;
    const server = { ...s, labels: { ...s.labels }, id, ipv4: `198.51.100.${id % 250}`, status: "initializing" };
    this.servers.set(id, server);
    this.created.push(server);
    this.log.push(`createServer ${id} ${s.labels["fleet.io/role"]} from ${s.image}`);
    return { id, ipv4: server.ipv4 };
  }
  async serverStatus(id: number) {
    const s = this.servers.get(id)!;
    if (s.status === "initializing")
      s.status = "running"; // running on the second look
    else if (s.status === "starting") return "starting";
    return s.status;
  }
  async shutdown(id: number) {
    this.log.push(`shutdown ${id}`);
    if (!this.ignoreShutdown) this.servers.get(id)!.status = "off";
    return this.next++;
  }
  async poweroff(id: number) {
    this.log.push(`poweroff ${id}`);
    this.servers.get(id)!.status = "off";
    return this.next++;
  }
  async createSnapshot(serverId: number, _description: string, labels: Readonly<Record<string, string>>) {
    const server = this.servers.get(serverId)!;
    if (server.status !== "off") throw new Error(`snapshot of server ${serverId} while ${server.status}`);
    const imageId = String(this.next++);
    this.snapshots.set(imageId, {
      id: imageId,
      created: new Date().toISOString(),
      labels: { ...labels },
      fromServer: serverId,
    });
    this.log.push(`createSnapshot ${imageId} of ${serverId}`);
    return { imageId, actionId: this.next++ };
  }
  async waitAction() {
    return;
  }
  async deleteServer(id: number) {
    this.servers.delete(id);
    this.log.push(`deleteServer ${id}`);
  }
  async setImageLabels(id: string, labels: Readonly<Record<string, string>>) {
    this.snapshots.get(id)!.labels = { ...labels };
    this.log.push(`setImageLabels ${id} validated=${labels["fleet.io/validated"]}`);
  }
  async imageExists(id: string) {
    return this.snapshots.has(id);
  }
  async listSnapshots(selector: string): Promise<SnapshotInfo[]> {
    const [key, value] = selector.split("=");
    return [...this.snapshots.values()].filter((s) => s.labels[key!] === value);
  }
  async imagesInUse() {
    return [...this.servers.values()].map((s) => s.image).filter((i) => this.snapshots.has(i));
  }
  async deleteImage(id: string) {
    this.snapshots.delete(id);
    this.log.push(`deleteImage ${id}`);
  }
}

export interface ShellCall {
  readonly conn: SshConnection;
  readonly step: string;
  readonly script: string;
}

/** Deps around a FakeHcloud: SSH calls recorded and answered by `answer` (default: exit 0). */
export function fakeDeps(
  api: FakeHcloud,
  answer: (step: string, script: string) => Partial<ExecResult> = () => ({}),
): { deps: HcloudBuildDeps; shell: ShellCall[]; uploads: { conn: SshConnection; dir: string }[] } {
  const shell: ShellCall[] = [];
  const uploads: { conn: SshConnection; dir: string }[] = [];
  let n = 0;
  const deps: HcloudBuildDeps = {
    api,
    shell: async (conn, script, step) => {
      shell.push({ conn, step, script });
      api.log.push(`ssh ${conn.host} ${step}`);
      return { code: 0, stdout: "", stderr: "", ...answer(step, script) };
    },
    upload: async (conn, dir) => {
      uploads.push({ conn, dir });
      api.log.push(`upload ${conn.host}`);
    },
    keyPair: () => {
      n++;
      return {
        privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\nPRIV${n}\n-----END OPENSSH PRIVATE KEY-----`,
        publicKey: `ssh-ed25519 AAAAKEY${n}`,
      };
    },
    readyTimeoutMs: 1000,
    shutdownTimeoutMs: 50,
    pollMs: 1,
  };
  return { deps, shell, uploads };
}
