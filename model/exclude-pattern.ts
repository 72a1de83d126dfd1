/**
 * What an exclude pattern (a path source's `exclude`, a docker image's `exclude`) may be. Shared by
 * the config schema and the matcher (source/files.ts), so that what validates is what matches.
 * Undefined when the pattern is fine, otherwise what is wrong with it and how to write it.
 */
export function excludePatternProblem(pattern: string): string | undefined {
  if (pattern === "") return "must not be empty";
  if (/[\0\n\r]/.test(pattern)) return "must be a single line";
  if (pattern.startsWith("/"))
    return "must be relative to the source directory (data/*.db, not /srv/app/data/*.db; ./build for the top-level build only)";
  if (pattern.startsWith("!")) return "negation (!) is not supported: list only what to leave out";
  const body = pattern.replace(/^\.\//, "").replace(/\/$/, "");
  if (body.split("/").some((part) => part === "" || part === "." || part === ".."))
    return "must stay inside the source directory: no '..', '.' or empty parts (a leading ./ is fine)";
  return undefined;
}
