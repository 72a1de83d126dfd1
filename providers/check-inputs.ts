import type { z } from "zod";
import { UNKNOWN } from "../decisions/diff-keys";
import { formatFieldPath, issueMessage } from "../model/rules/issues";
import { unrepresentable, type FieldProblem } from "../model/rules/text";

/** What a dynamic provider's `check` returns per bad input: Pulumi shows it with the resource. */
export interface CheckFailure {
  readonly property: string;
  readonly reason: string;
}

/**
 * Whether check() lets a problem pass: preview's unknowns (anywhere on the path to the field),
 * and absent fields (the components always send them; the provider checks what it is given).
 */
function passes(inputs: Record<string, unknown>, problem: FieldProblem & { readonly code: string }): boolean {
  let value: unknown = inputs;
  for (const seg of problem.path) {
    if (value === UNKNOWN) return true;
    value = value !== null && typeof value === "object" ? (value as Record<string | number, unknown>)[seg] : undefined;
  }
  return value === UNKNOWN || (value === undefined && problem.code === "invalid_type");
}

/**
 * A provider's inputs checked against the model's schema of them: the same rules, and so the
 * same verdicts, as the config schema's. Failures name the property as Pulumi does
 * (`env.PORT`, `releases[1]`) and never quote the value (inputs hold secrets).
 */
export function checkInputs(schema: z.ZodType, news: Record<string, unknown>): CheckFailure[] {
  // The serialized provider rides along with the inputs; it is not one of them.
  const inputs = Object.fromEntries(Object.entries(news).filter(([k]) => k !== "__provider"));
  const result = schema.safeParse(inputs);
  const problems = [
    ...unrepresentable(inputs).map((p) => ({ ...p, code: "custom" })),
    ...(result.success
      ? []
      : result.error.issues.map((i) => ({
          path: i.path.filter((s): s is string | number => typeof s !== "symbol"),
          message: issueMessage(i),
          code: i.code,
        }))),
  ];
  return problems
    .filter((p) => !passes(inputs, p))
    .map((p) => ({ property: formatFieldPath(p.path, "bracket"), reason: p.message }));
}
