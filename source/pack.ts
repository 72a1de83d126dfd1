import type { Readable } from "stream";
import type { ResolvedSource } from "../model/service";

/** A gzipped tar of the release on a stream, and a promise that settles when packing ends. */
export interface PackedSource {
  readonly stream: Readable;
  readonly done: Promise<void>;
}

/**
 * Packs the release on the deploying machine: `git archive` of the exact commit (never the
 * working tree), or `tar` of the directory with the same excludes as its content hash.
 * Runs inside the provider, so `child_process` is required here, not captured.
 */
export function packSource(source: ResolvedSource): PackedSource {
  const { spawn } = require("child_process") as typeof import("child_process");
  const { PassThrough } = require("stream") as typeof import("stream");
  const [cmd, args] =
    source.kind === "git"
      ? ["git", ["-C", source.repo, "archive", "--format=tar.gz", source.commit]]
      : source.kind === "image"
        ? // The release of an image is one file naming it; the image itself is loaded apart.
          [
            "sh",
            [
              "-c",
              'd=$(mktemp -d) && printf "%s\\n" "$1" > "$d/IMAGE" && tar -czf - -C "$d" IMAGE; rc=$?; rm -rf "$d"; exit $rc',
              "sh",
              source.imageId,
            ],
          ]
        : ["tar", ["-czf", "-", ...source.exclude.map((p) => `--exclude=${p}`), "-C", source.path, "."]];
  const child = spawn(cmd as string, args as string[], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
  const done = new Promise<void>((resolve, reject) => {
    child.on("error", (e) => reject(new Error(`packing the release failed: ${cmd}: ${e.message}`)));
    child.on("close", (code) =>
      code === 0 ? resolve() : reject(new Error(`packing the release failed: ${cmd} exited ${code}: ${stderr.trim()}`)),
    );
  });
  // Piped at once: Node discards a child's unread stdout when the child exits, and a small
  // release is packed before the SSH channel that will read it is open.
  const stream = new PassThrough();
  child.stdout!.pipe(stream);
  return { stream, done };
}
