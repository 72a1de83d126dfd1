import { z } from "zod";
import { releasePath, safeAbsolutePath } from "./paths";
import { command } from "./text";

/**
 * Names fleet itself uses: in `shared/` (the env file, the proxy's instance env files) and at the
 * top of every release (REVISION, IMAGE, the `.fleet-*` markers). A shared path there would
 * clobber them.
 */
const RESERVED_TOP = new Set(["env", "instances", "REVISION", "IMAGE"]);

const SHARED_PATH_EXAMPLE = 'e.g. "data/uploads", "config/extra.ini" or ".env.local"';

/** The characters a shared path may hold: none of them means anything to docker, a shell or systemd. */
const SHARED_PATH_CHAR = /^[A-Za-z0-9_.@+/-]$/;

/**
 * Why `p` cannot be a shared path's text, or undefined. A shared path lands in words other
 * syntaxes read (security issue "a service's own account never becomes root"): an image's
 * `docker run -v <host>:<container>` (a ':' ends the host path, so `data:/etc` would mount
 * /etc), docker's `--mount k=v,k=v` (a ',' starts the next option), the activation's shell
 * lines and systemd's unit lines (a control character ends a word or a line, `%` and `$` are
 * expanded), and the argv of mkdir, chown and ln (a part starting with '-' is an option). So
 * only letters, digits and `_ . @ + -` are allowed, and no part may start with '-'.
 */
export function sharedPathTextProblem(p: string): string | undefined {
  const allowed = `use only letters, digits and _ . @ + - in its parts (${SHARED_PATH_EXAMPLE})`;
  const control = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.exec(p);
  if (control)
    return `must not contain a control character (found ${JSON.stringify(control[0])}): a newline or tab ends a shell word or a systemd line; ${allowed}`;
  if (p.includes(":"))
    return `must not contain ':': docker -v reads it as the end of the host path ("data:/etc" would mount the host's /etc); ${allowed}`;
  if (p.includes(","))
    return `must not contain ',': docker --mount reads it as the start of another option; ${allowed}`;
  const dash = p.split("/").find((part) => part.startsWith("-"));
  if (dash !== undefined)
    return `no part may start with '-' (found ${JSON.stringify(dash)}): mkdir, chown and ln would take it as an option; ${allowed}`;
  const odd = [...p].find((ch) => !SHARED_PATH_CHAR.test(ch));
  if (odd !== undefined)
    return `must not contain ${JSON.stringify(odd)} (docker, a shell or systemd could read it as syntax); ${allowed}`;
  return undefined;
}

/**
 * A path in `shared/` and in each release: a release path (relative, normalized) of plain
 * characters (sharedPathTextProblem) whose first part fleet does not use. The one rule for
 * `shared:`, in the stack config (config/schema.ts) and the Service provider's check
 * (model/service-spec.ts, through sharedSpecSchema).
 */
export const sharedPath = releasePath
  .superRefine((p, ctx) => {
    const problem = sharedPathTextProblem(p);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  })
  .refine((p) => {
    const top = p.split("/")[0]!;
    return !RESERVED_TOP.has(top) && !top.startsWith(".fleet");
  }, "must not start with env, instances, REVISION, IMAGE or .fleet (fleet's own files in shared/ and in each release)");

/**
 * Why a set of shared paths cannot be linked, per offending path: one inside another would be
 * linked through the other's link (and a release's `rm -rf` of it would reach the shared data).
 */
export function sharedPathProblems(paths: readonly { readonly at: (string | number)[]; readonly path: string }[]) {
  const problems: { path: (string | number)[]; message: string }[] = [];
  paths.forEach((p, i) => {
    const other = paths.find((q, j) => j !== i && (q.path === p.path ? j < i : p.path.startsWith(`${q.path}/`)));
    if (other)
      problems.push({
        path: p.at,
        message:
          other.path === p.path
            ? `"${p.path}" is shared twice: give each path once, as a dir or as a file`
            : `"${p.path}" is inside the shared "${other.path}": share "${other.path}" alone (it holds "${p.path}" already)`,
      });
  });
  return problems;
}

/** Adds an issue per shared path that overlaps another (sharedPathProblems), at that path. */
export function checkSharedPaths(
  s: { readonly dirs: readonly string[]; readonly files: Readonly<Record<string, string>> },
  ctx: z.RefinementCtx,
): void {
  const paths = [
    ...s.dirs.map((path, i) => ({ at: ["dirs", i], path })),
    ...Object.keys(s.files).map((path) => ({ at: ["files", path], path })),
  ];
  for (const problem of sharedPathProblems(paths)) ctx.addIssue({ code: "custom", ...problem });
}

/** Where an image's container sees the shared entries: an absolute path. */
export const containerDir = safeAbsolutePath;

/** The shared entries as the provider takes them (every default applied). */
export const sharedSpecSchema = z
  .object({ dirs: z.array(sharedPath), files: z.record(sharedPath, z.string()), containerDir: containerDir.optional() })
  .superRefine(checkSharedPaths);

/** The hooks as the provider takes them (postDeploy in its long form). */
export const hooksSpecSchema = z.object({
  preSwitch: command.optional(),
  postDeploy: z.object({ run: command, rollbackOnFailure: z.boolean() }).optional(),
  postRollback: command.optional(),
});

/**
 * An image runs in its container, which does not see the release directory: its shared entries
 * are mounted under `containerDir`; a release of files has them linked in, and no containerDir.
 */
export function sharedSourceProblem(isImage: boolean, shared: { readonly containerDir?: string } | undefined) {
  if (!shared) return undefined;
  if (isImage && shared.containerDir === undefined)
    return "an image's container does not see the release directory: give containerDir, where the container sees the shared entries (its WORKDIR, e.g. /app)";
  if (!isImage && shared.containerDir !== undefined)
    return "containerDir goes with image sources; a release of files has its shared entries linked in";
  return undefined;
}
