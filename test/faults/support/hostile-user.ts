/**
 * The hostile service user column (security issue 29, "a service's own account never becomes
 * root"): the family's service runs as `deploy` (its `runAs`), which owns its release trees, its
 * deps sets and its shared entries. Before the deploy, and again while the deploy waits at the
 * phase's sync point, that account, acting as itself (`runuser`), plants in every tree it owns
 * (the new release's own once it is the account's, the deps set being installed) links that a
 * root step following them would turn into root's help:
 * - fleet's legacy marker names (`.fleet-staged`, `.fleet-activated`, `.fleet-deps`, `REVISION`)
 *   and the install's `when` file (`requirements.txt`) → a root-only victim file outside fleet's
 *   root, in each release and each deps set;
 * - names an unquoted `$(find …)` would split into a root-only victim folder's file
 *   (`a /root/fleet-fault-victim-dir/x`), linking into `deps/`;
 * - the release's shared links → the victims, and `-shm`/`-wal`/`-journal` names (what a SQLite
 *   backup chowns) → the victim file in its shared dir.
 * It also tries every root-owned path fleet writes (the service dir, `shared/`, `.marks/`, the
 * staging tree, the lock, deploy.log, the env file): each must refuse it. No other fault is
 * injected. After the deploy and after the next up(), on top of runCell's invariants: the victims'
 * owner, mode, link count, times and content are unchanged, no file under the service's (or its
 * backups') folder holds the victim's content, and neither fleet's error nor a refresh shows it.
 *
 * Every deploy must go through, but the install's: there the account links the `when` file the
 * install copied into its deps set, and the install's own `cp` of it (as the account) cannot read
 * the root-only file: a failure of the install phase, the old release untouched (docs/security.md).
 */
import { strict as assert } from "assert";
import { runCell, type CellPlan } from "./cell";
import { go, type GatePoint } from "./inject";
import { note, type Phase } from "./matrix";
import type { Server } from "./servers";
import type { FaultStack } from "./stack";

/** The service's account on the fault servers (test/hosts/recipe.sh creates it). */
export const HOSTILE_USER = "deploy";
/** What the family shares: a dir the account fills with links, a file it owns in root's `shared/`. */
export const HOSTILE_SHARED = { dirs: ["data"], files: { "config.ini": "answer=42\n" } } as const;

/** Root-only victims outside fleet's root. */
export const VICTIM = "/etc/fleet-fault-victim";
export const VICTIM_DIR = "/root/fleet-fault-victim-dir";
/** The victim's content: found anywhere under the service's folder, root copied it there. */
const SECRET = "fleet-fault-victim 5b1e0c7a: root-only content";

/** The phases whose sync point the new release's tree is the account's by (built, migrated, switched…). */
const NEW_TREE_IS_THE_USERS: ReadonlySet<Phase> = new Set<Phase>(["build", "migrate", "switch", "restart", "health"]);

/**
 * The plants, as the account: `sh -s -- <service dir> <victim> <victim dir>`. Prints what it
 * planted in (`release=`, `deps=`, `installing=` for a deps set not complete yet, `shared=`),
 * `planted=<n>`, `failed=<path>` for a plant that did not land in the account's own tree, and
 * `refused=`/`reached=` for each root-owned path it tried.
 */
export const PLANT_SCRIPT = `D=$1; V=$2; VD=$3
n=0
plant() { if ln -sfn "$2" "$1" 2>/dev/null; then n=$((n + 1)); else echo "failed=$1"; fi; }
into=$D/deps/gone
for d in "$D"/deps/*/; do [ -d "$d" ] && into=\${d%/}/.venv && break; done
for r in "$D"/releases/*/; do
  r=\${r%/}; [ -d "$r" ] && [ -O "$r" ] || continue
  for m in .fleet-staged .fleet-activated .fleet-deps REVISION requirements.txt config.ini; do plant "$r/$m" "$V"; done
  plant "$r/data" "$VD"
  # An unquoted $(find "$r" -lname "$D/deps/*") splits these into "$r/a" (or "$r/b") and "$VD/x".
  mkdir -p "$r/a $VD" "$r/b
$VD" && plant "$r/a $VD/x" "$into" && plant "$r/b
$VD/x" "$into"
  echo "release=\${r##*/}"
done
for d in "$D"/deps/*/; do
  d=\${d%/}; [ -d "$d" ] && [ -O "$d" ] || continue
  for m in .fleet-staged .fleet-activated .fleet-deps REVISION requirements.txt; do plant "$d/$m" "$V"; done
  echo "deps=\${d##*/}"; [ -e "$d/.fleet-complete" ] || echo "installing=\${d##*/}"
done
for s in "$D"/shared/*; do
  [ -d "$s" ] && [ ! -L "$s" ] && [ -O "$s" ] || continue
  for m in app.db app.db-shm app.db-wal app.db-journal; do plant "$s/$m" "$V"; done
  plant "$s/victim-dir" "$VD"
  echo "shared=\${s##*/}"
done
echo "planted=$n"
for p in "$D" "$D/releases" "$D/deps" "$D/shared" "$D/.marks" "$D"/.marks/*/ "$D/.staging" "$D"/.staging/*/ "$D/.rollback" "$D/.lock"; do
  p=\${p%/}; [ -d "$p" ] && [ ! -L "$p" ] || continue
  if ln -s "$V" "$p/.fleet-fault-probe" 2>/dev/null; then rm -f "$p/.fleet-fault-probe"; echo "reached=$p"; else echo "refused=$p"; fi
done
for f in "$D/shared/env" "$D/deploy.log" "$D/verified" "$D/.owner" "$D/.lock/owner" "$D"/.marks/*/*; do
  [ -f "$f" ] || continue
  if [ -w "$f" ]; then echo "reached=$f"; else echo "refused=$f"; fi
done
`;

export interface PlantReport {
  readonly releases: string[];
  readonly deps: string[];
  readonly installing: string[];
  readonly shared: string[];
  readonly planted: number;
  readonly failed: string[];
  readonly refused: string[];
  readonly reached: string[];
}

export function parsePlantReport(out: string): PlantReport {
  const all = (key: string) =>
    out
      .split("\n")
      .filter((l) => l.startsWith(`${key}=`))
      .map((l) => l.slice(key.length + 1));
  return {
    releases: all("release"),
    deps: all("deps"),
    installing: all("installing"),
    shared: all("shared"),
    planted: Number(all("planted")[0] ?? 0),
    failed: all("failed"),
    refused: all("refused"),
    reached: all("reached"),
  };
}

/** The account plants in everything it owns under `dir`; a plant that cannot land, or a root path it can write, fails the cell. */
export async function plant(server: Server, dir: string, when: string): Promise<PlantReport> {
  const r = await server.exec(
    `runuser -u ${HOSTILE_USER} -- /bin/sh -s -- ${dir} ${VICTIM} ${VICTIM_DIR}`,
    PLANT_SCRIPT,
  );
  assert.equal(r.code, 0, `the account's plants (${when}) ended with exit ${r.code}: ${r.stderr.trim()}`);
  const report = parsePlantReport(r.stdout);
  assert.deepEqual(report.failed, [], `plants in the account's own trees did not land (${when})`);
  assert.deepEqual(
    report.reached,
    [],
    `the service's account can write where root writes (${when}): root's next step there follows the account's link`,
  );
  assert.ok(
    report.releases.length > 0 && report.planted > 0,
    `the account found a release of its own to plant in (${when})`,
  );
  return report;
}

/** Owner, mode, link count, size, times, content and entries of the victims, as root sees them. */
export async function victims(server: Server): Promise<string> {
  return server.sh(
    `stat -c '%n %U:%G %a %h %s %Y %Z' ${VICTIM} ${VICTIM_DIR} ${VICTIM_DIR}/x; sha256sum ${VICTIM} ${VICTIM_DIR}/x; ls -A ${VICTIM_DIR}`,
  );
}

/** Creates the victims (root-only, known content) and returns their fingerprint. */
export async function plantVictims(server: Server): Promise<string> {
  await server.sh(
    `printf '%s\\n' '${SECRET}' > ${VICTIM} && chmod 600 ${VICTIM} && ` +
      `mkdir -p ${VICTIM_DIR} && chmod 700 ${VICTIM_DIR} && echo keep > ${VICTIM_DIR}/x && chmod 600 ${VICTIM_DIR}/x`,
  );
  return victims(server);
}

export async function removeVictims(server: Server): Promise<void> {
  await server.exec(`rm -rf ${VICTIM} ${VICTIM_DIR}`);
}

/** The files under the service's and its backups' folders that hold the victim's content (links not followed). */
async function copiesOfVictim(stack: FaultStack): Promise<string[]> {
  const r = await stack.o.server.exec(`grep -rlF -- '${SECRET}' ${stack.dir} ${stack.backupsDir} 2>/dev/null; true`);
  return r.stdout.split("\n").filter(Boolean);
}

async function assertUntouched(stack: FaultStack, baseline: string, when: string): Promise<void> {
  assert.equal(await victims(stack.o.server), baseline, `the victims' owner, mode, times or content changed ${when}`);
  assert.deepEqual(
    await copiesOfVictim(stack),
    [],
    `files under the service's folder hold the victim's content ${when}`,
  );
}

function described(r: PlantReport): string {
  const where = [
    `releases ${r.releases.join(", ")}`,
    r.deps.length ? `deps ${r.deps.map((d) => d.slice(0, 12)).join(", ")}` : "",
    r.installing.length ? `(being installed: ${r.installing.map((d) => d.slice(0, 12)).join(", ")})` : "",
    r.shared.length ? `shared ${r.shared.join(", ")}` : "",
  ].filter(Boolean);
  return `${r.planted} links in ${where.join("; ")}; ${r.refused.length} root paths refused it`;
}

/** The family's victims: their fingerprint since they were (re)created. */
export interface Victims {
  baseline: string;
}

export interface HostileCell {
  readonly phase: Phase;
  readonly point: GatePoint;
  readonly victims: Victims;
  readonly names: RegExp;
  readonly evidence: RegExp;
  readonly files?: Record<string, string>;
}

/** One cell: plants, the deploy (plants again at the sync point), runCell's invariants and the victims'. */
export async function hostileUserCell(stack: FaultStack, c: HostileCell): Promise<string> {
  const { phase } = c;
  const log = (line: string) => note(phase, "hostile-user", line);
  const server = stack.o.server;
  // Each cell judges its own deploy: victims an earlier (failed) cell let fleet change are made anew.
  if ((await victims(server)) !== c.victims.baseline) {
    log("an earlier cell's deploy changed the victims (that cell failed): they are made anew");
    c.victims.baseline = await plantVictims(server);
  }
  const before = await plant(server, stack.dir, "before the deploy");
  log(`before the deploy, the account planted ${described(before)}`);
  let during: PlantReport | undefined;
  const plan: CellPlan = {
    phase,
    fault: "hostile-user",
    point: c.point,
    mode: "wait",
    ...(c.files ? { files: c.files } : {}),
    inject: async (ctx) => {
      // The step goes on whatever the plants' own checks say (a failed check fails the cell).
      try {
        during = await plant(server, stack.dir, `while the deploy waits in its ${phase} phase`);
      } finally {
        await go(server, ctx.point);
      }
      if (NEW_TREE_IS_THE_USERS.has(phase))
        assert.ok(during.releases.includes(ctx.newRelease), "the account planted in the new release's own tree");
      if (phase === "install")
        assert.ok(during.installing.length > 0, "the account planted in the deps set being installed");
      return `inside the phase, the account planted ${described(during)}; then the step went on`;
    },
    recover: async () => undefined,
    names: c.names,
    evidence: c.evidence,
    afterFault: async (st, err) => {
      await assertUntouched(st, c.victims.baseline, "after the deploy");
      const read = await st.read();
      assert.ok(!JSON.stringify(read ?? {}).includes(SECRET), "a refresh shows the victim's content");
      assert.ok(!(err?.message ?? "").includes(SECRET), "fleet's error shows the victim's content");
      if (phase === "install") {
        // The install's `cp requirements.txt …` runs as the account, through the link it planted.
        assert.ok(err, "the install whose `when` file the account linked to a root-only file did not fail");
        assert.match(err.message, /Permission denied/, "the install failed reading the linked file as the account");
      } else {
        assert.equal(
          err,
          undefined,
          `the deploy failed though only the account's plants were there: ${err?.message.split("\n").slice(0, 4).join(" ⏎ ")}`,
        );
      }
      log("after the deploy: the victims are unchanged; no file under the service's folder holds their content");
    },
    afterConverged: async (st) => {
      await assertUntouched(st, c.victims.baseline, "after the next up()");
      log("after the next up(): the victims are unchanged; no copy of them under the service's folder");
    },
  };
  const outcome = await runCell(stack, plan);
  const total = before.planted + (during?.planted ?? 0);
  const refused = before.refused.length + (during?.refused.length ?? 0);
  return `${outcome}; ${total} links planted, ${refused} root paths refused; victims unchanged`;
}
