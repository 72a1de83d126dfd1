import type { Readable } from "stream";
import type { ResolvedSource } from "../model/service";
import { releaseFiles } from "./files";

/** A gzipped tar of the release on a stream, and a promise that settles when packing ends. */
export interface PackedSource {
  readonly stream: Readable;
  readonly done: Promise<void>;
}

/**
 * Packs the release on the deploying machine: `git archive` of the exact commit (never the
 * working tree), or `tar` of exactly the directory's release files (source/files.ts, the list
 * its content hash is made of), fed to tar by name so tar applies no patterns of its own.
 * Runs inside the provider, so `child_process` is required here, not captured.
 */
export function packSource(source: ResolvedSource): PackedSource {
  const { spawn } = require("child_process") as typeof import("child_process");
  const { PassThrough } = require("stream") as typeof import("stream");
  let command: PackCommand;
  try {
    command = packCommand(source);
  } catch (e) {
    return failedPack(new Error(`packing the release failed: ${(e as Error).message}`));
  }
  const { cmd, args, stdin } = command;
  const child = spawn(cmd, args, { stdio: [stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
  if (stdin !== undefined) {
    // A tar that dies early closes its stdin: its exit code and stderr say why, not the EPIPE.
    child.stdin!.on("error", () => undefined);
    child.stdin!.end(stdin);
  }
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

interface PackCommand {
  readonly cmd: string;
  readonly args: string[];
  /** What the command reads on stdin, if anything. */
  readonly stdin?: string;
}

function packCommand(source: ResolvedSource): PackCommand {
  switch (source.kind) {
    case "git":
      return { cmd: "git", args: ["-C", source.repo, "archive", "--format=tar.gz", source.commit] };
    case "image":
      // The release of an image is one file naming it; the image itself is loaded apart.
      return {
        cmd: "sh",
        args: [
          "-c",
          'd=$(mktemp -d) && printf "%s\\n" "$1" > "$d/IMAGE" && tar -czf - -C "$d" IMAGE; rc=$?; rm -rf "$d"; exit $rc',
          "sh",
          source.imageId,
        ],
      };
    case "path":
      // NUL-separated names, each as ./name: no name is read as an option or a pattern, and a
      // newline in a name is just a character. --no-recursion: a listed name is that entry only.
      return {
        cmd: "tar",
        args: ["-czf", "-", "-C", source.path, "--no-recursion", "--null", "-T", "-"],
        stdin: releaseFiles(source.path, source.exclude)
          .map((f) => `./${f}\0`)
          .join(""),
      };
  }
}

/** A pack that failed before anything ran: an empty stream, and `done` rejecting with why. */
function failedPack(error: Error): PackedSource {
  const { PassThrough } = require("stream") as typeof import("stream");
  const stream = new PassThrough();
  stream.end();
  const done = Promise.reject(error);
  // Marked handled: a caller that stops at the empty stream must not crash the process.
  done.catch(() => undefined);
  return { stream, done };
}

/** Releases up to this size are packed once per provider host and reused for every server. */
export const SHARED_PACK_LIMIT_BYTES = 64 * 1024 * 1024;

/**
 * The key under which a packed release may be shared between servers: the exact commit or
 * content hash, so two servers get the same bytes only when they deploy the same release.
 */
export function packKey(source: ResolvedSource, releaseId: string): string {
  if (source.kind === "git") return `git ${source.repo} ${source.commit}`;
  if (source.kind === "image") return `image ${source.imageId}`;
  return `path ${source.path} ${releaseId} ${source.exclude.join(",")}`;
}

interface SharedPack {
  readonly bytes: Promise<Buffer | undefined>;
  size?: number;
}

/**
 * The release as a stream, packed once per provider host for all servers deploying it (a
 * rollout to ten servers runs `git archive` once, not ten times). A release larger than
 * SHARED_PACK_LIMIT_BYTES is not kept: each server then gets its own packing stream. Kept on
 * globalThis (the provider is serialized by value); a failed pack is forgotten, and the oldest
 * packs go when the kept bytes pass the limit.
 */
export async function sharedPack(source: ResolvedSource, releaseId: string): Promise<PackedSource> {
  const { Readable } = require("stream") as typeof import("stream");
  const g = globalThis as unknown as Record<string, Record<string, SharedPack> | undefined>;
  const packs = (g["__fleetPacks"] ??= {});
  const key = packKey(source, releaseId);
  let entry = packs[key];
  if (!entry) {
    const created: SharedPack = { bytes: collect(packSource(source), SHARED_PACK_LIMIT_BYTES) };
    entry = created;
    packs[key] = created;
    created.bytes.then(
      (bytes) => {
        if (!bytes) return void delete packs[key];
        created.size = bytes.length;
        evictOldest(packs, key);
      },
      () => void delete packs[key],
    );
  }
  const bytes = await entry.bytes;
  if (!bytes) return packSource(source);
  return { stream: Readable.from([bytes]), done: Promise.resolve() };
}

/** The whole packed stream, or undefined once it passes `limit` (the packing is then stopped). */
async function collect(packed: PackedSource, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of packed.stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      packed.stream.destroy();
      packed.done.catch(() => undefined);
      return undefined;
    }
    chunks.push(chunk);
  }
  await packed.done;
  return Buffer.concat(chunks);
}

/** Drops the oldest settled packs (insertion order) until the kept bytes fit the limit. */
function evictOldest(packs: Record<string, SharedPack>, newest: string): void {
  let total = Object.values(packs).reduce((sum, p) => sum + (p.size ?? 0), 0);
  for (const [key, pack] of Object.entries(packs)) {
    if (total <= SHARED_PACK_LIMIT_BYTES) break;
    if (key === newest || pack.size === undefined) continue;
    delete packs[key];
    total -= pack.size;
  }
}
