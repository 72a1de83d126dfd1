import { shq } from "./quote";
import { serviceLayout } from "./layout";
import { pathOf } from "./service-proxy";
import { proxyLayout } from "./proxy";
import { MARK_FUNCTIONS, commitFactLine } from "./release-marks";

export interface StatusTarget {
  readonly root: string;
  readonly name: string;
  readonly unitName: string;
  readonly healthUrl: string;
  /** Behind the proxy: the serving instance (its port) is what is read and probed. */
  readonly proxied?: boolean;
}

/** What `npm run status` reads from one host for one service, in one round trip. */
export function statusScript(t: StatusTarget): string {
  const layout = serviceLayout(t.root, t.name, t.unitName);
  const D = shq(layout.dir);
  return [
    `if [ ! -d ${D} ]; then echo deployed=0; exit 0; fi`,
    `echo deployed=1`,
    `cur=$(readlink ${D}/current 2>/dev/null || true); echo "release=\${cur##*/}"`,
    `D=${D}`,
    MARK_FUNCTIONS,
    `if [ -n "$cur" ]; then ${commitFactLine("commit", '"${cur##*/}"')}; fi`,
    ...(t.proxied
      ? [
          `sp=$(cat ${shq(proxyLayout(layout.dir).servingFile)} 2>/dev/null || true); echo "instance=$sp"`,
          `echo "active=$(systemctl is-active ${shq(t.unitName)}@"$sp" 2>/dev/null || true)"`,
          `echo "health=$(curl -gs -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$sp"${shq(pathOf(t.healthUrl))} || true)"`,
        ]
      : [
          `echo "active=$(systemctl is-active ${shq(t.unitName)} 2>/dev/null || true)"`,
          // -g: the URL as given, never expanded by curl's {a,b} / [1-3] globbing.
          `echo "health=$(curl -gs -o /dev/null -w '%{http_code}' --max-time 2 ${shq(t.healthUrl)} || true)"`,
        ]),
    `echo "last=$(tail -n 1 ${shq(layout.auditLog)} 2>/dev/null | base64 -w0)"`,
    `[ -d ${D}/.lock ] && echo "locked=$(tr '\\n' ' ' < ${D}/.lock/owner | base64 -w0)" || true`,
    "",
  ].join("\n");
}
