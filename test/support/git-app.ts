import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

/** A throwaway git repository seeded from a fixture app, for deploying real commits. */
export class GitApp {
  readonly dir: string;

  constructor(fixture: string) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-app-"));
    fs.cpSync(fixture, this.dir, { recursive: true });
    this.git("init", "-q", "-b", "main");
    this.commit("initial");
  }

  git(...args: string[]): string {
    return execFileSync("git", ["-C", this.dir, ...args], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    }).trim();
  }

  /** Writes (or, with null, deletes) files and commits; returns the new commit's SHA. */
  commit(message: string, files: Record<string, string | null> = {}): string {
    for (const [file, content] of Object.entries(files)) {
      const full = path.join(this.dir, file);
      if (content === null) fs.rmSync(full, { force: true });
      else {
        fs.mkdirSync(path.dirname(full), { recursive: true });
        fs.writeFileSync(full, content);
      }
    }
    this.git("add", "-A");
    this.git(
      "-c",
      "user.email=test@fleet",
      "-c",
      "user.name=fleet test",
      "commit",
      "-q",
      "--allow-empty",
      "-m",
      message,
    );
    return this.head();
  }

  head(): string {
    return this.git("rev-parse", "HEAD");
  }
}
