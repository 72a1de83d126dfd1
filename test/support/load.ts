import * as http from "http";

/**
 * A steady HTTP load over keep-alive connections, as users put on a service during a deploy:
 * `rate` requests per second, each one recorded with its outcome (the release that answered, or
 * what failed) and its latency. The zero-downtime test and `npm run bench:zero-downtime` read
 * their verdicts from it: requests that failed, and requests a given release answered.
 */
export interface LoadOptions {
  readonly host: string;
  readonly port: number;
  readonly path: string;
  /** Requests per second. */
  readonly rate: number;
  /** Keep-alive connections (the agent's sockets). Default 4. */
  readonly connections?: number;
  /** Reads the answering release from a 200's body. Default: the body's JSON `release`. */
  readonly releaseOf?: (body: string) => string;
  /** The Host header (a route's host name). */
  readonly hostHeader?: string;
}

export interface LoadSample {
  /** When it was sent, ms since the load started. */
  readonly at: number;
  readonly ms: number;
  /** The answering release for a 200; else `status <n>` or `error <code>`. */
  readonly outcome: string;
  readonly ok: boolean;
}

export interface LoadReport {
  readonly samples: readonly LoadSample[];
  readonly failed: readonly LoadSample[];
  /** How many requests each release answered. */
  readonly byRelease: Readonly<Record<string, number>>;
  readonly seconds: number;
  /** Latency percentile (0–100) of the successful requests, in ms. */
  readonly percentile: (p: number) => number;
}

function defaultRelease(body: string): string {
  try {
    return String((JSON.parse(body) as { release?: unknown }).release ?? "?");
  } catch {
    return "unparsable body";
  }
}

export function startLoad(options: LoadOptions): { stop: () => Promise<LoadReport>; count: () => number } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.connections ?? 4 });
  const releaseOf = options.releaseOf ?? defaultRelease;
  const samples: LoadSample[] = [];
  const inFlight = new Set<Promise<void>>();
  const t0 = performance.now();
  const one = (): Promise<void> => {
    const at = performance.now() - t0;
    return new Promise<void>((resolve) => {
      const done = (outcome: string, ok: boolean) => {
        samples.push({ at, ms: performance.now() - t0 - at, outcome, ok });
        resolve();
      };
      const req = http.get(
        {
          host: options.host,
          port: options.port,
          path: options.path,
          agent,
          timeout: 10_000,
          ...(options.hostHeader ? { headers: { Host: options.hostHeader } } : {}),
        },
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (body += c));
          res.on("end", () =>
            res.statusCode === 200 ? done(releaseOf(body), true) : done(`status ${res.statusCode}`, false),
          );
          res.on("error", (e: NodeJS.ErrnoException) => done(`error ${e.code ?? e.message}`, false));
        },
      );
      req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" })));
      req.on("error", (e: NodeJS.ErrnoException) => done(`error ${e.code ?? e.message}`, false));
    });
  };
  let sent = 0;
  const timer = setInterval(() => {
    // Paced by the clock, not by answers: a slow answer does not lower the rate.
    const due = Math.floor(((performance.now() - t0) / 1000) * options.rate);
    while (sent < due) {
      sent++;
      const p = one().finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
  }, 5);
  return {
    count: () => samples.length,
    stop: async () => {
      clearInterval(timer);
      await Promise.all([...inFlight]);
      agent.destroy();
      const seconds = (performance.now() - t0) / 1000;
      const byRelease: Record<string, number> = {};
      for (const s of samples) if (s.ok) byRelease[s.outcome] = (byRelease[s.outcome] ?? 0) + 1;
      const okMs = samples
        .filter((s) => s.ok)
        .map((s) => s.ms)
        .sort((a, b) => a - b);
      return {
        samples,
        failed: samples.filter((s) => !s.ok),
        byRelease,
        seconds,
        percentile: (p: number) =>
          okMs.length ? okMs[Math.min(okMs.length - 1, Math.floor((p / 100) * okMs.length))]! : NaN,
      };
    },
  };
}
