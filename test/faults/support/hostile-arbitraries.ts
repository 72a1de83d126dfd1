/**
 * Generators of hostile input for test/faults/hostile-input.test.ts: names, paths, env values,
 * commands, URLs, unicode and control characters, built from fragments that would do something
 * detectable (touch the injection marker) if any layer ever ran them as code.
 */
import fc from "fast-check";

/** The sandbox on web3 and the file a successful injection would create there. */
export const CANARY_DIR = "/srv/fleet-canary";
export const MARKER_NAME = "FLEETCANARY_INJECTED";
export const MARKER = `${CANARY_DIR}/${MARKER_NAME}`;

/** Payloads that execute something when a shell, awk, sed, systemd or a heredoc interprets them. */
export const INJECTIONS: readonly string[] = [
  `$(touch ${MARKER})`,
  "`touch " + MARKER + "`",
  `;touch ${MARKER};`,
  `\ntouch ${MARKER}\n`,
  `&& touch ${MARKER}`,
  `|| touch ${MARKER}`,
  `| touch ${MARKER}`,
  `& touch ${MARKER} &`,
  `$(touch\${IFS}${MARKER})`,
  `';touch ${MARKER};'`,
  `";touch ${MARKER};"`,
  `\\";touch ${MARKER};#`,
  `\${x:-$(touch ${MARKER})}`,
  `$((\`touch ${MARKER}\`))`,
  `\n$(touch ${MARKER})\n`,
  `'"$(touch ${MARKER})"'`,
  `\\x24(touch ${MARKER})`,
  `\r\ntouch ${MARKER}\r\n`,
  // Relative: lands in whatever directory the script runs in (swept too).
  `$(touch ${MARKER_NAME})`,
  `;touch ${MARKER_NAME}`,
  // systemd: a specifier or an environment expansion that would change the command.
  `$MAINPID`,
  `\${MARKER}`,
  `%h/%n`,
  // awk -v and sed: escapes and delimiters.
  `\\x27;system("touch ${MARKER}");\\x27`,
  `/;e touch ${MARKER};/`,
];

/** Characters and short strings each layer treats specially. */
export const SPECIALS: readonly string[] = [
  "'",
  '"',
  "\\",
  "`",
  "$",
  "$IFS",
  "${IFS}",
  "$$",
  "$?",
  "$0",
  "$1",
  "$@",
  "*",
  "?",
  "[",
  "]",
  "[a-z]",
  "{a,b}",
  "{}",
  "~",
  "~root",
  "#",
  "!",
  "&",
  "|",
  ";",
  "<",
  ">",
  "<<EOF",
  "(",
  ")",
  "=",
  " ",
  "  ",
  "\t",
  "\n",
  "\r",
  "\r\n",
  "\x00",
  "\x01",
  "\x07",
  "\x08",
  "\x0b",
  "\x0c",
  "\x1b[2J",
  "\x1b]0;title\x07",
  "\x7f",
  "\u0085",
  "\u00a0",
  "\u2028",
  "\u2029",
  "\u200b",
  "\u200d",
  "\u202e",
  "\u2066",
  "\ufeff",
  "\ufffd",
  "\ufffe",
  "\uffff",
  "\ufdd0",
  "\u{10ffff}",
  "\u{1fffe}",
  "\ud83d\ude00",
  "e\u0301",
  "ß",
  "İ",
  "ﬁ",
  "日本語",
  "שלום",
  "مرحبا",
  "\ud800",
  "\udc00",
  "-",
  "--",
  "-rf",
  "-e",
  "-n",
  "--help",
  "-oProxyCommand",
  "..",
  "../",
  "/",
  "//",
  "./",
  ".",
  "%",
  "%s",
  "%n",
  "%%",
  "%h",
  "%i",
  "%{http_code}",
  "\\n",
  "\\t",
  "\\x41",
  "\\u0041",
  "\\0",
  "\\\\",
  "\\\n",
  "EOF",
  ":",
  ",",
  "@",
  "+",
  "^",
  "{{.Id}}",
  "&amp;",
  "%00",
  "%0a",
  "%2e%2e",
];

const token = fc.constantFrom(...INJECTIONS, ...SPECIALS);

/**
 * A hostile string: fragments, arbitrary code points, and now and then a very long run (64 KiB
 * at most: long enough to cross line and argument buffers, short enough to batch thousands).
 */
export function hostileString(opts: { maxParts?: number } = {}): fc.Arbitrary<string> {
  const part = fc.oneof(
    { weight: 6, arbitrary: token },
    { weight: 2, arbitrary: fc.string({ unit: "grapheme-ascii", maxLength: 10 }) },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 6 }) },
    { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 6 }) },
  );
  const short = fc.array(part, { minLength: 1, maxLength: opts.maxParts ?? 8 }).map((p) => p.join(""));
  const long = fc
    .tuple(token, fc.integer({ min: 1_000, max: 65_536 }))
    .map(([t, n]) => t.repeat(Math.ceil(n / t.length)));
  return fc.oneof({ weight: 30, arbitrary: short }, { weight: 1, arbitrary: long });
}

/** Shapes a valid value of a field would have, with hostile parts mixed in. */
export function around(valid: string, hostile: fc.Arbitrary<string> = hostileString()): fc.Arbitrary<string> {
  return fc.oneof(
    hostile,
    hostile.map((h) => valid + h),
    hostile.map((h) => h + valid),
    fc.tuple(hostile, hostile).map(([a, b]) => `${a}${valid}${b}`),
  );
}

/** Names made of the characters names may hold, plus the edges (`@` at the end, unit suffixes). */
export const nameLike: fc.Arbitrary<string> = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9_.@-]{1,70}$/),
  fc
    .tuple(
      fc.stringMatching(/^[a-z0-9][a-z0-9_.-]{0,20}$/),
      fc.constantFrom("@", "@x", ".service", ".socket", ".target", ".timer", ".mount", ".v2", "-", "_", ".", ""),
    )
    .map(([a, b]) => a + b),
);

/** Relative paths as `install.when` / `source.paths` take them, hostile components included. */
export const relativePathLike: fc.Arbitrary<string> = fc.oneof(
  fc
    .array(
      fc.oneof(
        { weight: 3, arbitrary: hostileString({ maxParts: 3 }).map((s) => s.replace(/\//g, "_").slice(0, 200)) },
        { weight: 1, arbitrary: fc.constantFrom(".", "..", "", "-rf", "--", "*", "~", ".git", " ") },
      ),
      { minLength: 1, maxLength: 3 },
    )
    .map((parts) => parts.join("/")),
  hostileString(),
);

/** Absolute paths, hostile or plausible. */
export const absolutePathLike: fc.Arbitrary<string> = fc.oneof(
  fc.stringMatching(/^\/[A-Za-z0-9_.@+-]{1,12}(\/[A-Za-z0-9_.@+-]{1,12}){0,3}$/),
  relativePathLike.map((p) => "/" + p),
  hostileString(),
);

/** URLs: a plausible http URL with a hostile path/query, or hostile text. */
export function urlLike(base = "http://127.0.0.1:18850/"): fc.Arbitrary<string> {
  return fc.oneof(
    hostileString({ maxParts: 4 }).map((h) => base + h),
    hostileString({ maxParts: 4 }).map((h) => `${base}health?q=${h}`),
    fc.constantFrom(
      `${base}{a,b}`,
      `${base}[1-3]`,
      `${base}a[b`,
      `http://[::1]:18850/`,
      `${base}%7B%7D`,
      `https://user:pa$$@example.invalid/x`,
      `${base}#frag`,
      `${base}a/../b/./c`,
    ),
    hostileString(),
  );
}

/** Environment variable names: valid ones (including ones a script might use itself) and not. */
export const envKeyLike: fc.Arbitrary<string> = fc.oneof(
  fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,30}$/),
  fc.constantFrom("D", "R", "T", "S", "RUN_AS", "prev", "rc", "tmp", "IFS", "PATH", "FLEET_X", "1A", "A-B", "A B"),
  hostileString({ maxParts: 3 }),
);
