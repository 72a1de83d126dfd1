/**
 * Remote output as the operating commands print it: cut into lines as it streams, each line
 * redacted of the stack's secrets and, with several hosts, prefixed by its host (`web1 | …`).
 */
import { redact } from "../transport/redact";

/**
 * One line (its bytes, newline included) redacted. A line that is valid UTF-8 is redacted as
 * text (with the JSON and URL forms redact knows); any other line byte by byte (latin1 keeps
 * every byte), so binary output passes through unchanged but for the secrets.
 */
export function redactLine(line: Buffer, secrets: readonly string[]): Buffer {
  if (secrets.length === 0) return line;
  const text = line.toString("utf8");
  if (Buffer.from(text, "utf8").equals(line)) return Buffer.from(redact(text, secrets), "utf8");
  const asBytes = secrets.map((s) => Buffer.from(s, "utf8").toString("latin1"));
  return Buffer.from(redact(line.toString("latin1"), asBytes), "latin1");
}

/**
 * Cuts a stream into lines and hands each on redacted (and prefixed): a secret split between two
 * chunks is still whole in its line. `flush` hands on what is left without a newline (with a
 * prefix, ended by one, so the next host's line starts on its own).
 */
export class LineWriter {
  private pending: Buffer = Buffer.alloc(0);

  constructor(
    private readonly write: (bytes: Buffer) => void,
    private readonly secrets: readonly string[],
    private readonly prefix = "",
  ) {}

  push(chunk: Buffer): void {
    let data = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    for (let nl = data.indexOf(0x0a); nl !== -1; nl = data.indexOf(0x0a)) {
      this.emit(data.subarray(0, nl + 1));
      data = data.subarray(nl + 1);
    }
    this.pending = Buffer.from(data);
  }

  flush(): void {
    if (this.pending.length === 0) return;
    this.emit(this.prefix ? Buffer.concat([this.pending, Buffer.from("\n")]) : this.pending);
    this.pending = Buffer.alloc(0);
  }

  private emit(line: Buffer): void {
    const redacted = redactLine(line, this.secrets);
    this.write(this.prefix ? Buffer.concat([Buffer.from(this.prefix, "utf8"), redacted]) : redacted);
  }
}

/** `web1 | ` with the host names padded to one width, so the lines of several hosts align. */
export function hostPrefix(host: string, hosts: readonly string[]): string {
  const width = Math.max(host.length, ...hosts.map((h) => h.length));
  return `${host.padEnd(width)} | `;
}
