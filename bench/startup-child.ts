/**
 * Loads the fleet program under Pulumi mocks with a production-sized config (12 services on 6
 * hosts, 3 backups, a 3-host rollout) and reports how long until every resource is registered.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { allRegistrations, installMocks, settle } from "../test/support/mocks";

async function main(): Promise<void> {
  await installMocks();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-startup-"));
  const key = path.join(dir, "key");
  fs.writeFileSync(key, "-----BEGIN OPENSSH PRIVATE KEY-----\nX\n-----END OPENSSH PRIVATE KEY-----\n");
  const app = path.resolve(__dirname, "..", "demo", "app");
  const hosts = Object.fromEntries(
    Array.from({ length: 6 }, (_, i) => [
      `h${i}`,
      {
        address: `10.0.0.${i + 1}`,
        privateKeyFile: key,
        hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEd",
        bootstrap: {},
      },
    ]),
  );
  const service = (host: string) => ({
    host,
    source: { path: app },
    start: "python3 app.py",
    health: { url: "http://127.0.0.1:8080/api/health" },
  });
  const services: Record<string, unknown> = Object.fromEntries(
    Array.from({ length: 11 }, (_, i) => [`s${i}`, service(`h${i % 6}`)]),
  );
  services["rolling"] = {
    ...service("h0"),
    host: undefined,
    hosts: ["h0", "h1", "h2"],
    rollout: { batch: 1, canary: [] },
  };
  const backups = Object.fromEntries(
    Array.from({ length: 3 }, (_, i) => [
      `db${i}`,
      { host: `h${i}`, sqlite: { path: `/var/lib/app${i}.db` }, protects: [`s${i}`] },
    ]),
  );
  pulumi.runtime.setAllConfig({
    "fleet:hosts": JSON.stringify(hosts),
    "fleet:services": JSON.stringify(services),
    "fleet:backups": JSON.stringify(backups),
  });
  require("../index");
  await settle();
  console.log(JSON.stringify({ resources: allRegistrations().length, ms: Math.round(process.uptime() * 1000) }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
