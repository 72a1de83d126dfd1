/**
 * Build contexts for the image tests: test/fixtures/images/web (a FROM scratch Dockerfile) plus
 * the static test server compiled once per run from test/fixtures/images/server.c. Each context
 * is a throwaway git repository, so the image gets a commit tag like a real one.
 */
import { execFileSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export const IMAGE_FIXTURES = path.resolve(__dirname, "..", "fixtures", "images");

let compiled: string | undefined;

/** The test server as a static binary (gcc -static), cached by the source's hash. */
export function serverBinary(): string {
  if (compiled) return compiled;
  const source = path.join(IMAGE_FIXTURES, "server.c");
  const hash = createHash("sha256").update(fs.readFileSync(source)).digest("hex").slice(0, 12);
  const out = path.join(os.tmpdir(), `fleet-image-server-${hash}`);
  if (!fs.existsSync(out)) {
    try {
      execFileSync("gcc", ["-static", "-O2", "-o", `${out}.tmp`, source], { stdio: ["ignore", "pipe", "pipe"] });
    } catch (err) {
      throw new Error(
        `cannot compile the image tests' server (gcc -static ${source}): ${String((err as { stderr?: Buffer }).stderr ?? err)}. ` +
          "The image tests need gcc and a static libc (Debian: build-essential).",
      );
    }
    fs.renameSync(`${out}.tmp`, out);
  }
  compiled = out;
  return out;
}

function git(dir: string, ...args: string[]): string {
  return execFileSync("git", ["-C", dir, "-c", "user.email=test@fleet", "-c", "user.name=fleet test", ...args], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  }).trim();
}

/** A build context in its own git repository: web fixture + server binary, first commit made. */
export class ImageContext {
  readonly dir: string;

  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-image-ctx-"));
    fs.cpSync(path.join(IMAGE_FIXTURES, "web"), this.dir, { recursive: true });
    fs.copyFileSync(serverBinary(), path.join(this.dir, "server"));
    fs.chmodSync(path.join(this.dir, "server"), 0o755);
    git(this.dir, "init", "-q", "-b", "main");
    this.commit("initial");
  }

  /** Writes (or, with null, deletes) files and commits them; returns the commit. */
  commit(message: string, files: Record<string, string | null> = {}): string {
    this.write(files);
    git(this.dir, "add", "-A");
    git(this.dir, "commit", "-q", "--allow-empty", "-m", message);
    return git(this.dir, "rev-parse", "HEAD");
  }

  write(files: Record<string, string | null>): void {
    for (const [file, content] of Object.entries(files)) {
      const full = path.join(this.dir, file);
      if (content === null) fs.rmSync(full, { force: true });
      else {
        fs.mkdirSync(path.dirname(full), { recursive: true });
        fs.writeFileSync(full, content);
      }
    }
  }

  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
