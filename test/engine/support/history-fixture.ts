/**
 * The rollback reader's fixture, test/fixtures/backend, is a file backend the real CLI wrote
 * (test/engine/history.test.ts). Each engine run writes a fresh copy to test-results/ (git-ignored),
 * so `npm test` leaves the tree clean; `npm run fixtures:history` copies it over the committed one.
 *
 * What is kept: `.pulumi/meta.yaml`, the stack file (not its `.bak`) and every history and checkpoint file with its
 * `.attrs` sidecar, byte for byte, except one thing: each `__provider` value (the bundled dynamic
 * provider, ~70 kB per resource) is replaced by a note of its length. So the `.attrs` md5 and the
 * manifest's magic no longer match the bytes; fleet reads neither.
 */
import * as fs from "fs";
import * as path from "path";

const PROJECT_ROOT = path.resolve(__dirname, "..", "..", "..");

/** What each run of the engine history test writes (ignored by git). */
export const HISTORY_FIXTURE_EVIDENCE = path.join(PROJECT_ROOT, "test-results", "history-backend");

/** The committed fixture that test/unit/rollback-history.test.ts reads. */
export const HISTORY_FIXTURE_COMMITTED = path.join(PROJECT_ROOT, "test", "fixtures", "backend");

/** A JSON string member `"__provider":"…"` as the CLI writes it (compact JSON). */
const PROVIDER_MEMBER = /"__provider":"((?:[^"\\]|\\.)*)"/g;

/** The text with every `__provider` value replaced by a note of its length. */
export function elideProviders(json: string): string {
  return json.replace(
    PROVIDER_MEMBER,
    (_all, code: string) => `"__provider":"<elided: the bundled dynamic provider, ${code.length} chars>"`,
  );
}

/** Copies a file backend's stack and history (not its backups or locks), providers elided. */
export function captureBackend(backendDir: string, to: string): string[] {
  const root = path.join(backendDir, ".pulumi");
  const kept = ["meta.yaml", "meta.yaml.attrs", "stacks", "history"];
  fs.rmSync(to, { recursive: true, force: true });
  const written: string[] = [];
  const walk = (rel: string) => {
    const from = path.join(root, rel);
    if (!fs.existsSync(from)) return;
    if (fs.statSync(from).isDirectory()) {
      for (const name of fs.readdirSync(from).sort()) walk(path.join(rel, name));
      return;
    }
    if (/\.bak(\.attrs)?$/.test(rel)) return; // the stack file's previous version: fleet never reads it
    const dest = path.join(to, ".pulumi", rel);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    const bytes = fs.readFileSync(from);
    fs.writeFileSync(dest, rel.endsWith(".json") ? elideProviders(bytes.toString("utf8")) : bytes);
    written.push(rel);
  };
  kept.forEach(walk);
  return written;
}

/** `npm run fixtures:history`: the latest evidence replaces the committed fixture. */
export function publishHistoryFixture(from = HISTORY_FIXTURE_EVIDENCE, to = HISTORY_FIXTURE_COMMITTED): string {
  if (!fs.existsSync(path.join(from, ".pulumi", "meta.yaml"))) {
    throw new Error(
      `${from}: no captured backend yet. Run test/engine/history.test.ts (or \`npm test\`) first, then this again.`,
    );
  }
  fs.rmSync(to, { recursive: true, force: true });
  fs.cpSync(from, to, { recursive: true });
  return `${path.relative(process.cwd(), to)} ← ${path.relative(process.cwd(), from)}`;
}

if (require.main === module) {
  try {
    console.log(publishHistoryFixture());
  } catch (e) {
    console.error((e as Error).message);
    process.exit(1);
  }
}
