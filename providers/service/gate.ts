import type { ServiceSpec } from "../../model/service";
import { decodeBase64, parseFacts } from "../../commands/facts";
import { judgeHealth, type HealthVerdict, type ProbeOutcome } from "../../decisions/health";
import { redact, tail } from "../../transport/redact";
import { indent } from "./lock";

/** The health gate's outcome, read from a script that ran the probe (activate or rollback). */
export interface Gate {
  readonly outcome: ProbeOutcome;
  readonly verdict: HealthVerdict;
}

function parseProbe(stdout: string): ProbeOutcome {
  const f = parseFacts(stdout).one;
  const baseline = Number(f["restarts"] ?? 0);
  return {
    result: (f["result"] as ProbeOutcome["result"]) ?? "timeout",
    status: f["status"] ?? "000",
    body: decodeBase64(f["body"]),
    curlError: decodeBase64(f["curl_error"]),
    versionStatus: f["version_status"],
    versionBody: f["version_body"] !== undefined ? decodeBase64(f["version_body"]) : undefined,
    active: f["active"] ?? "",
    journal: decodeBase64(f["journal"]),
    restarts: { baseline, now: Number(f["restarts_now"] ?? baseline) },
  };
}

/** The verdict on a script's probe output, with a real JSON parse of the version body. */
export function judge(spec: Pick<ServiceSpec, "health">, stdout: string, commit: string): Gate {
  const outcome = parseProbe(stdout);
  return { outcome, verdict: judgeHealth(outcome, spec.health, commit) };
}

/**
 * The evidence of a failed gate: the last response, the version body, the journal. Each is
 * redacted before it is cut and quoted: quoting escapes a secret's `"` and `\` (so the raw
 * value no longer matches), and a cut could leave half a secret.
 */
export function evidence(outcome: ProbeOutcome, secrets: string[]): string {
  const clean = (text: string) => redact(text, secrets);
  const parts = [`  last response: HTTP ${outcome.status} ${JSON.stringify(clean(outcome.body).slice(0, 500))}`];
  if (outcome.versionBody !== undefined)
    parts.push(`  version response: ${JSON.stringify(clean(outcome.versionBody).slice(0, 500))}`);
  if (outcome.journal) parts.push(`  journal (last 50 lines):\n${indent(tail(clean(outcome.journal), 50))}`);
  return clean(parts.join("\n"));
}
