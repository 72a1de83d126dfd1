import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import { load } from "js-yaml";

const ROOT = path.resolve(__dirname, "..", "..");
const WORKFLOW = path.join(ROOT, ".github", "workflows", "deploy.yml");

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
}
interface Job {
  if?: string;
  needs?: string | string[];
  environment?: string;
  concurrency?: { group?: string; "cancel-in-progress"?: boolean };
  steps: Step[];
}
interface Workflow {
  on: Record<string, unknown>;
  env?: Record<string, unknown>;
  jobs: Record<string, Job>;
}

const text = fs.readFileSync(WORKFLOW, "utf8");
const wf = load(text) as Workflow;
const steps = Object.values(wf.jobs).flatMap((j) => j.steps);

/** Every string value in the document (keys excluded), with where it is. */
function strings(v: unknown, at: string, out: [string, string][] = []): [string, string][] {
  if (typeof v === "string") out.push([at, v]);
  else if (Array.isArray(v)) v.forEach((x, i) => strings(x, `${at}[${i}]`, out));
  else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) strings(x, `${at}.${k}`, out);
  return out;
}

describe("the GitHub Actions workflow (.github/workflows/deploy.yml)", () => {
  it("parses as YAML with the four jobs on their triggers", () => {
    assert.deepEqual(Object.keys(wf.jobs).sort(), ["deploy", "drift", "preview", "test"]);
    assert.deepEqual(Object.keys(wf.on).sort(), ["pull_request", "push", "schedule", "workflow_dispatch"]);
    const cron = (wf.on["schedule"] as { cron: string }[])[0]!.cron;
    assert.equal(cron.split(/\s+/).length, 5, `cron has five fields: ${cron}`);
    assert.match(wf.jobs["preview"]!.if!, /pull_request/);
    assert.match(wf.jobs["deploy"]!.if!, /push/);
    assert.match(wf.jobs["drift"]!.if!, /schedule/);
    assert.match(wf.jobs["drift"]!.if!, /workflow_dispatch/);
    assert.equal(wf.jobs["deploy"]!.needs, "test", "no deploy without the tests");
  });

  it("every `npm run <script>` it uses exists in package.json", () => {
    const scripts = Object.keys(
      (JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { scripts: object }).scripts,
    );
    const used = steps.flatMap((s) => [...(s.run ?? "").matchAll(/\bnpm run ([\w:-]+)/g)].map((m) => m[1]!));
    assert.deepEqual([...new Set(used)].sort(), ["deploy", "drift", "test:unit"]);
    const missing = used.filter((u) => !scripts.includes(u));
    assert.deepEqual(missing, [], `package.json has no script(s) ${missing.join(", ")}`);
  });

  it("the jobs run what they should: unit tests, preview on the PR, deploy and drift through fleet's wrappers", () => {
    const runs = (job: string) => wf.jobs[job]!.steps.map((s) => s.run ?? "").join("\n");
    assert.match(runs("test"), /^npm ci$/m);
    assert.match(runs("test"), /^npm run test:unit$/m);
    const action = wf.jobs["preview"]!.steps.find((s) => s.uses?.startsWith("pulumi/actions@"));
    assert.ok(action, "preview uses pulumi/actions");
    assert.equal(action.with!["command"], "preview");
    assert.equal(action.with!["comment-on-pr"], true);
    assert.match(String(action.with!["stack-name"]), /^\$\{\{ env\.\w+ \}\}$/);
    assert.match(runs("deploy"), /npm run deploy -- --stack /);
    assert.match(runs("drift"), /npm run drift -- --stack /);
  });

  it("uses only the pulumi/actions inputs the action declares", () => {
    // From pulumi/actions' README (v6): the inputs this workflow may pass.
    const known = new Set([
      "command",
      "stack-name",
      "work-dir",
      "cloud-url",
      "comment-on-pr",
      "github-token",
      "diff",
      "refresh",
      "edit-pr-comment",
    ]);
    for (const s of steps.filter((x) => x.uses?.startsWith("pulumi/actions@")))
      for (const input of Object.keys(s.with ?? {}))
        assert.ok(known.has(input), `unknown pulumi/actions input ${input}`);
  });

  it("every action is pinned to a version", () => {
    const uses = steps.map((s) => s.uses).filter((u): u is string => !!u);
    assert.ok(uses.length >= 8);
    for (const u of uses)
      assert.match(u, /^[\w.-]+\/[\w.-]+(\/[\w./-]+)?@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$/, `${u} is not pinned`);
  });

  it("the deploy job has a concurrency group per stack that never cancels a running deploy", () => {
    const c = wf.jobs["deploy"]!.concurrency;
    assert.ok(c?.group, "deploy has a concurrency group");
    assert.match(c.group, /^deploy-/);
    assert.equal(c["cancel-in-progress"], false);
    assert.equal(wf.jobs["deploy"]!.environment, "production", "deploy secrets sit behind an environment");
    // The drift check must not share it: a queued run in a group cancels the queued one before it.
    assert.notEqual(wf.jobs["drift"]!.concurrency?.group, c.group);
  });

  it("commits no secret values: credentials only as ${{ secrets.X }} references", () => {
    const all = strings(wf, "workflow");
    const secretish = /(TOKEN|PASSPHRASE|SECRET|PASSWORD|_KEY|ACCESS_KEY_ID|BACKEND_URL)$/;
    const named = all.filter(
      ([at]) => secretish.test(at.split(".").pop()!) || /\.with\.(github-token|cloud-url)$/.test(at),
    );
    assert.ok(named.length >= 6, "the credentials are named");
    for (const [at, v] of named)
      assert.match(v, /^\$\{\{ secrets\.[A-Z_]+ \}\}$/, `${at} must be a secrets reference, not ${v}`);
    for (const [at, v] of all) {
      assert.doesNotMatch(v, /-----BEGIN [A-Z ]*PRIVATE KEY-----/, at);
      assert.doesNotMatch(v, /\bpul-[0-9a-f]{20,}/, `${at}: a Pulumi access token`);
      assert.doesNotMatch(v, /\b(AKIA|ASIA)[0-9A-Z]{16}\b/, `${at}: an AWS key id`);
      assert.doesNotMatch(v, /\bgh[pousr]_[A-Za-z0-9]{20,}/, `${at}: a GitHub token`);
    }
    assert.doesNotMatch(text, /hooks\.slack\.com\/services\/T|discord(app)?\.com\/api\/webhooks\/\d/, "no webhook URL");
  });
});
