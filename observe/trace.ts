/**
 * Where a deploy's time goes, for bench:compare's phase breakdown. With FLEET_TRACE=<file>, each
 * process on the deploy path (the runner, the hosted program, the provider host) appends one JSON
 * line per event: `{ ev, pid, origin, t, ... }`, where `origin` is when the process started and
 * every time is epoch milliseconds (one clock: the processes share the machine). Without
 * FLEET_TRACE it costs one environment read and writes nothing.
 */
import * as fs from "fs";

export interface TraceLine {
  readonly ev: string;
  readonly pid: number;
  /** When this process started (performance.timeOrigin), epoch ms. */
  readonly origin: number;
  /** When the event was written, epoch ms. */
  readonly t: number;
  readonly [field: string]: unknown;
}

export const TRACE_ENV = "FLEET_TRACE";

/** Appends one event; a trace that cannot be written never fails a deploy. */
export function traceEvent(ev: string, fields: Record<string, unknown> = {}): void {
  const file = process.env[TRACE_ENV];
  if (!file) return;
  const line: TraceLine = {
    ev,
    pid: process.pid,
    origin: Math.round(performance.timeOrigin),
    t: Date.now(),
    ...fields,
  };
  try {
    fs.appendFileSync(file, JSON.stringify(line) + "\n");
  } catch {
    // tracing is for benchmarks only
  }
}

/** Whether tracing is on (callers skip building costly fields otherwise). */
export function tracing(): boolean {
  return Boolean(process.env[TRACE_ENV]);
}

/** The events of a trace file, in file order. */
export function readTrace(file: string): TraceLine[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as TraceLine);
}
