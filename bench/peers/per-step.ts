/**
 * The `@pulumi/command` model, emulated faithfully: every step is its own resource
 * (`remote.CopyToRemote` or `remote.Command`) and every resource opens a NEW SSH connection
 * (ssh2 `new Client()` per step, as pulumi-command does), runs, and closes it. Steps chain with
 * `dependsOn` per host; hosts run in parallel (like `pulumi up --parallel`). A step runs only
 * when its `triggers` changed since the last run (state kept in a JSON file, like Pulumi state),
 * so a run with nothing changed runs nothing.
 *
 * Usage (by bench/compare.ts): tsx bench/peers/per-step.ts <job.json>
 * Prints one JSON line: { ms, steps, connections } (ms excludes Node/tsx start-up).
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import { Client } from "ssh2";

export interface PerStepJob {
  readonly hosts: { readonly name: string; readonly address: string }[];
  readonly key: string;
  readonly repo: string;
  readonly rev: string;
  readonly root: string;
  readonly port: number;
  readonly stateFile: string;
}

type State = Record<string, string>; // resource name → triggers it last ran with

const UNIT = "benchcmd";

function connect(address: string, key: string): Promise<Client> {
  return new Promise((resolve, reject) => {
    const c = new Client();
    c.once("ready", () => resolve(c));
    c.once("error", reject);
    c.connect({ host: address, port: 22, username: "root", privateKey: key, readyTimeout: 20_000 });
  });
}

/** remote.Command: a new connection, one exec, close. */
async function command(address: string, key: string, script: string, stdin?: Buffer): Promise<void> {
  const c = await connect(address, key);
  try {
    await new Promise<void>((resolve, reject) => {
      c.exec(script, (err, stream) => {
        if (err) return reject(err);
        let stderr = "";
        stream.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        stream.on("data", () => undefined);
        stream.on("close", (code: number) =>
          code === 0 ? resolve() : reject(new Error(`${address}: exit ${code}: ${script}\n${stderr}`)),
        );
        stream.end(stdin);
      });
    });
  } finally {
    c.end();
  }
}

/** remote.CopyToRemote: a new connection, an SFTP upload, close. */
async function copyToRemote(address: string, key: string, local: string, remote: string): Promise<void> {
  const c = await connect(address, key);
  try {
    await new Promise<void>((resolve, reject) => {
      c.sftp((err, sftp) => {
        if (err) return reject(err);
        sftp.fastPut(local, remote, (e) => (e ? reject(e) : resolve()));
      });
    });
  } finally {
    c.end();
  }
}

async function main(): Promise<void> {
  const job = JSON.parse(fs.readFileSync(process.argv[2]!, "utf8")) as PerStepJob;
  const key = fs.readFileSync(job.key, "utf8");
  const state: State = fs.existsSync(job.stateFile)
    ? (JSON.parse(fs.readFileSync(job.stateFile, "utf8")) as State)
    : {};
  const next: State = {};
  const started = process.hrtime.bigint();
  let steps = 0;
  const p = `${job.root}/cmd`;
  const rel = `${p}/releases/${job.rev}`;
  // The program's own work, done before any resource: the archive and the lockfile hash.
  const tarball = `${job.stateFile}.${job.rev}.tar.gz`;
  if (!fs.existsSync(tarball)) {
    execFileSync("git", ["-C", job.repo, "archive", "--format=tar.gz", "-o", tarball, job.rev]);
  }
  const lock = execFileSync("git", ["-C", job.repo, "show", `${job.rev}:requirements.txt`]);
  const lockHash = (await import("crypto")).createHash("sha256").update(lock).digest("hex");

  await Promise.all(
    job.hosts.map(async (h) => {
      const unit = [
        "[Unit]",
        "Description=bench app (per-step connections)",
        "StartLimitIntervalSec=0",
        "[Service]",
        `WorkingDirectory=${p}/current`,
        `EnvironmentFile=${p}/current/.env`,
        `Environment=APP_HOST=${h.address} APP_PORT=${job.port}`,
        `ExecStart=${p}/current/.venv/bin/python app.py`,
        "Restart=on-failure",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
      ].join("\n");
      // Resources in dependency order, each with its triggers (a replace re-runs create).
      const resources: { name: string; triggers: string; run: () => Promise<void> }[] = [
        {
          name: "setup",
          triggers: p,
          run: () => command(h.address, key, `mkdir -p ${p}/releases ${p}/uploads ${p}/venvs`),
        },
        {
          name: "unit",
          triggers: unit,
          run: () =>
            command(
              h.address,
              key,
              `cat > /etc/systemd/system/${UNIT}.service && systemctl daemon-reload`,
              Buffer.from(unit),
            ),
        },
        {
          name: "upload",
          triggers: job.rev,
          run: () => copyToRemote(h.address, key, tarball, `${p}/uploads/${job.rev}.tar.gz`),
        },
        {
          name: "extract",
          triggers: job.rev,
          run: () => command(h.address, key, `mkdir -p ${rel} && tar -xzf ${p}/uploads/${job.rev}.tar.gz -C ${rel}`),
        },
        {
          name: "deps",
          triggers: lockHash,
          run: () =>
            command(
              h.address,
              key,
              `v=${p}/venvs/${lockHash}; [ -d $v ] || { rm -rf $v.tmp && python3 -m venv --without-pip $v.tmp && ` +
                `cp ${rel}/requirements.txt $v.tmp/ && mv $v.tmp $v; }`,
            ),
        },
        {
          name: "link",
          triggers: `${job.rev} ${lockHash}`,
          run: () =>
            command(
              h.address,
              key,
              `ln -sfn ${p}/venvs/${lockHash} ${rel}/.venv && printf 'FLEET_COMMIT=%s\\n' ${job.rev} > ${rel}/.env`,
            ),
        },
        {
          name: "switch",
          triggers: job.rev,
          run: () => command(h.address, key, `ln -sfn ${rel} ${p}/.cur && mv -Tf ${p}/.cur ${p}/current`),
        },
        { name: "restart", triggers: job.rev, run: () => command(h.address, key, `systemctl restart ${UNIT}`) },
        {
          name: "health",
          triggers: job.rev,
          run: () =>
            command(
              h.address,
              key,
              `for i in $(seq 400); do curl -sf http://${h.address}:${job.port}/api/version | grep -q ${job.rev} && exit 0; ` +
                `sleep 0.05; done; exit 1`,
            ),
        },
      ];
      for (const r of resources) {
        const id = `${h.name}/${r.name}`;
        next[id] = r.triggers;
        if (state[id] === r.triggers) continue;
        await r.run();
        steps++;
      }
    }),
  );
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  fs.writeFileSync(job.stateFile, JSON.stringify(next));
  console.log(JSON.stringify({ ms, steps: steps / job.hosts.length }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
