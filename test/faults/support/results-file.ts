/**
 * Where the fault matrix's evidence goes. A test run writes it to test-results/ (git-ignored), so
 * `npm test` leaves the working tree clean; the committed copy, test/faults/RESULTS.md, changes
 * only on purpose: `npm run faults:results` copies the latest evidence over it.
 */
import * as fs from "fs";
import * as path from "path";

const PROJECT_ROOT = path.resolve(__dirname, "..", "..", "..");

/** What each run of test/faults/phases.test.ts writes (ignored by git). */
export const FAULT_RESULTS_EVIDENCE = path.join(PROJECT_ROOT, "test-results", "faults", "RESULTS.md");

/** The committed copy that README.md points to. */
export const FAULT_RESULTS_COMMITTED = path.join(PROJECT_ROOT, "test", "faults", "RESULTS.md");

/**
 * Copies the evidence of the latest run over the committed copy. Refuses a missing file and a
 * partial matrix (a run stopped early, or one narrowed with --grep), which would replace a
 * complete committed matrix with cells reading "not run".
 */
export function publishFaultResults(from = FAULT_RESULTS_EVIDENCE, to = FAULT_RESULTS_COMMITTED): string {
  let text: string;
  try {
    text = fs.readFileSync(from, "utf8");
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === "ENOENT" ? "no evidence yet" : String(err);
    throw new Error(`${from}: ${why}. Run \`npm run test:faults\` (or \`npm test\`) first, then this again.`);
  }
  const notRun = text.split("\n").filter((l) => /^### .*: not run$/.test(l)).length;
  if (notRun > 0) {
    throw new Error(
      `${from}: ${notRun} cell(s) "not run": the latest run did not cover the whole matrix. ` +
        `Run the whole of \`npm run test:faults\`, then this again; ${path.basename(to)} is unchanged.`,
    );
  }
  fs.copyFileSync(from, to);
  const cells = text.split("\n").find((l) => l.startsWith("Cells: ")) ?? "";
  return `${path.relative(process.cwd(), to)} ← ${path.relative(process.cwd(), from)}. ${cells}`;
}

if (require.main === module) {
  try {
    console.log(publishFaultResults());
  } catch (err) {
    console.error((err as Error).message);
    process.exitCode = 1;
  }
}
