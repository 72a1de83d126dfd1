import { z } from "zod";
import { excludePatternProblem } from "../exclude-pattern";

const notRootOrUp = (p: string) => p !== "/" && !p.split("/").includes("..");

/**
 * fleet's root directory on a host (services and bootstrap): absolute, no spaces or quotes,
 * never `/` itself and never escaping with `..` (releases are pruned under it).
 */
export const fleetRoot = z
  .string()
  .regex(/^\/[A-Za-z0-9_./-]*$/, "must be an absolute path without spaces or quotes")
  .refine(notRootOrUp, "must not be / or contain '..'");

/** Absolute paths that are safe inside sqlite dot-commands and the scripts' double quotes. */
export const SAFE_PATH_PATTERN = /^\/[A-Za-z0-9_./@+-]*$/;
export const safeAbsolutePath = z
  .string()
  .regex(SAFE_PATH_PATTERN, "must be an absolute path of letters, digits and _ . / @ + -")
  .refine(notRootOrUp, "must not be / or contain '..'");

/** Relative, normalized (no empty, '.' or '..' parts): these become file names in the release. */
export const releasePath = z
  .string()
  .min(1)
  .refine(
    (p) => p.split("/").every((part) => part !== "" && part !== "." && part !== ".."),
    "must be a path inside the release (relative, without '..', '.' or empty parts)",
  );

/** An exclude pattern (gitignore-like, see source/files.ts): the matcher's own rule. */
export const excludePattern = z.string().superRefine((p, ctx) => {
  const problem = excludePatternProblem(p);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});
