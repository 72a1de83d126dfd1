import * as path from "path";
import {
  dockerImageSpec,
  hcloudImageSpec,
  type DockerGoldenImageArgs,
  type HcloudGoldenImageArgs,
} from "../../components/golden-image";

/** Provider inputs shared by the providers' check tests (unit and in Pulumi's provider host). */

// Tests pick fields and reshape them freely.
type Json = Record<string, any>;

export const IMAGES = path.resolve(__dirname, "..", "fixtures", "images");
/** The connection of the host a docker image is validated on. */
export const imageHostConnection = {
  host: "127.0.0.13",
  port: 22,
  user: "root",
  privateKey: "KEY",
  hostKey: "ssh-ed25519 AAAA",
};

/** A valid postgres backup's provider inputs, as DatabaseBackup registers them. */
export const backupInputs = (): Json => ({
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

const asJson = (v: unknown): Json => JSON.parse(JSON.stringify(v)) as Json;

/**
 * The inputs GoldenImage registers for a docker image (its own spec builder), as JSON: the
 * context `web` validated by URL, with `image` over it, and `extra` (the hosts) beside.
 */
export const dockerImageInputs = (name: string, image: Partial<DockerGoldenImageArgs>, extra: Json): Json =>
  asJson({
    ...dockerImageSpec(name, {
      kind: "docker",
      context: path.join(IMAGES, "web"),
      validate: { url: "http://127.0.0.1:18650/health" },
      ...image,
    }),
    ...extra,
  });

/**
 * The inputs GoldenImage registers for an hcloud image (its own spec builder), as JSON: a
 * debian-12 cx22 in fsn1 provisioned from `provision`, with `image` over it, and `extra` (the
 * token) beside.
 */
export const hcloudImageInputs = (name: string, image: Partial<HcloudGoldenImageArgs>, extra: Json): Json =>
  asJson({
    ...hcloudImageSpec(name, {
      kind: "hcloud",
      baseImage: "debian-12",
      serverType: "cx22",
      location: "fsn1",
      provision: { dir: path.join(IMAGES, "provision") },
      validate: { check: "test -f /opt/agent/ready" },
      ...image,
    }),
    ...extra,
  });
