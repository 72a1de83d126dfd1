/**
 * deploy.log's recent lines, for the history chart (issue 21): one read per service × host, as
 * `npm run status` reads the last line (commands/status.ts), and the bars the chart draws.
 */
import { shq } from "../commands/quote";
import { deployFailed, parseDeployLine } from "./cells";

/** The script that prints the last `lines` lines of the service's deploy.log (nothing when absent). */
export function deployLogScript(root: string, service: string, lines: number): string {
  return `tail -n ${Math.max(1, Math.floor(lines))} ${shq(`${root}/${service}/deploy.log`)} 2>/dev/null || true\n`;
}

export interface Bar {
  /** `service@host`. */
  readonly where: string;
  /** Epoch ms. */
  readonly at: number;
  readonly seconds: number;
  readonly result: string;
  readonly ok: boolean;
  readonly text: string;
}

/** Every parseable line of every log, oldest first. */
export function barsOf(logs: readonly { service: string; host: string; lines: readonly string[] }[]): Bar[] {
  const bars: Bar[] = [];
  for (const log of logs)
    for (const text of log.lines) {
      const l = parseDeployLine(text);
      const at = l ? Date.parse(l.time) : NaN;
      if (!l || Number.isNaN(at)) continue;
      bars.push({
        where: `${log.service}@${log.host}`,
        at,
        seconds: l.seconds,
        result: l.result,
        ok: !deployFailed(l),
        text,
      });
    }
  return bars.sort((a, b) => a.at - b.at);
}
