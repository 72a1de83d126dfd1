import { strict as assert } from "assert";
import {
  argsOrExit,
  helpText,
  parseCommandLine,
  USAGE_EXIT,
  type CommandLine,
  type ScriptSpec,
} from "../../config/cli-args";
import { EXIT_CODES } from "../../decisions/outcome";

/** A script with one switch, one value flag and one positional, as restore has. */
const FLAGS = {
  yes: { type: "boolean", help: "do it" },
  config: { type: "string", value: "file", help: "the file" },
} as const;
const SPEC: ScriptSpec<typeof FLAGS> = {
  name: "thing",
  summary: "does a thing",
  usage: ["<id> --config <file> --yes"],
  flags: FLAGS,
  positionals: 1,
  exitCodes: ["0 done", "6 invalid usage"],
};

const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseCommandLine(SPEC, argv, env, "/proj");
function args(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const line = parse(argv, env);
  assert.equal(line.kind, "run", JSON.stringify(line));
  return (line as Extract<typeof line, { kind: "run" }>).args;
}
function problem(argv: string[]): string {
  const line = parse(argv);
  assert.equal(line.kind, "usage", JSON.stringify(line));
  return (line as { problem: string }).problem;
}

describe("config/cli-args: the operator scripts' command lines", () => {
  it("--stack/-s and --cwd/-C are common to every script; the stack defaults to $PULUMI_STACK, else dev", () => {
    assert.deepEqual(args(["--stack", "prod", "--cwd", "sub"]), {
      stack: "prod",
      cwd: "/proj/sub",
      flags: { yes: false, help: false, stack: "prod", cwd: "sub" },
      positionals: [],
      rest: [],
    });
    assert.equal(args(["-s", "prod"]).stack, "prod");
    assert.equal(args(["--stack=prod"]).stack, "prod");
    assert.equal(args(["-C", "/abs"]).cwd, "/abs");
    assert.equal(args([], { PULUMI_STACK: "staging" }).stack, "staging");
    assert.deepEqual([args([]).stack, args([]).cwd], ["dev", "/proj"]);
  });

  it("the script's own flags and positionals, typed", () => {
    const a = args(["abc", "--config", "r.yaml", "--yes"]);
    assert.deepEqual([a.positionals, a.flags.config, a.flags.yes], [["abc"], "r.yaml", true]);
    assert.equal(args([]).flags.yes, false);
    assert.equal(args([]).flags.config, undefined);
    assert.deepEqual(args(["--", "--starts-with-dashes"]).positionals, ["--starts-with-dashes"]);
  });

  it("rest: what follows -- is kept untouched for a remote command (--help and flags included), not counted as positionals", () => {
    const REST: ScriptSpec<typeof FLAGS> = { ...SPEC, rest: true };
    const line = parseCommandLine(REST, ["web", "--yes", "--", "ls", "-la", "--help", "--", "", "-s"], {}, "/proj");
    assert.equal(line.kind, "run", JSON.stringify(line));
    const a = (line as Extract<typeof line, { kind: "run" }>).args;
    assert.deepEqual(
      [a.positionals, a.rest, a.flags.yes, a.stack],
      [["web"], ["ls", "-la", "--help", "--", "", "-s"], true, "dev"],
    );
    const none = parseCommandLine(REST, ["web"], {}, "/proj") as Extract<typeof line, { kind: "run" }>;
    assert.deepEqual(none.args.rest, []);
    assert.equal(parseCommandLine(REST, ["web", "-h", "--", "ls"], {}, "/proj").kind, "help");
    // Without rest, what follows -- stays positional (and counted).
    assert.match(problem(["a", "--", "b"]), /unexpected argument "b"/);
  });

  it("an unknown flag is named, with a pointer to --help", () => {
    assert.equal(problem(["--bogus"]), "thing: unknown option --bogus (see npm run thing -- --help)");
    assert.equal(problem(["-x"]), "thing: unknown option -x (see npm run thing -- --help)");
    assert.match(problem(["--Stack", "prod"]), /unknown option --Stack/);
    assert.match(problem(["--constructor"]), /unknown option --constructor/);
  });

  it("a missing value, a value for a switch, a flag given twice, an argument too many", () => {
    assert.match(
      problem(["--stack"]),
      /^thing: --stack needs a value: -s, --stack <name> \(see npm run thing -- --help\)$/,
    );
    assert.match(problem(["--stack", "--yes"]), /--stack needs a value/);
    assert.match(problem(["--stack="]), /--stack needs a value/);
    assert.match(problem(["-s"]), /-s needs a value/);
    assert.match(problem(["--config"]), /--config needs a value: --config <file>/);
    assert.match(problem(["--yes=no"]), /--yes takes no value/);
    assert.match(problem(["--stack", "a", "-s", "b"]), /-s is given twice/);
    assert.match(problem(["a", "b"]), /unexpected argument "b"/);
  });

  it("--help/-h wins over everything else and lists usage, every flag and the exit codes", () => {
    for (const argv of [["--help"], ["-h"], ["--bogus", "-h"]]) {
      const line = parse(argv);
      assert.equal(line.kind, "help", argv.join(" "));
    }
    const text = helpText(SPEC);
    assert.match(text, /^npm run thing: does a thing\n\nusage:\n {2}npm run thing -- <id> --config <file> --yes\n/);
    for (const flag of ["--yes", "--config <file>", "-s, --stack <name>", "-C, --cwd <dir>", "-h, --help"])
      assert.ok(text.includes(flag), `${flag} in\n${text}`);
    assert.match(text, /exit codes:\n {2}0 done\n {2}6 invalid usage$/);
  });

  it("argsOrExit: the arguments, or 0 after the help, or the invalid-config code after a usage problem", () => {
    assert.equal(USAGE_EXIT, EXIT_CODES.config);
    assert.equal(USAGE_EXIT, 6);
    const log = console.log;
    const error = console.error;
    const printed: string[] = [];
    console.log = console.error = (s: string) => printed.push(s);
    try {
      assert.equal(argsOrExit(parse(["-h"])), 0);
      assert.equal(argsOrExit(parse(["--bogus"])), USAGE_EXIT);
      assert.deepEqual(argsOrExit({ kind: "run", args: 42 } as CommandLine<number>), 42);
    } finally {
      console.log = log;
      console.error = error;
    }
    assert.match(printed[0]!, /^npm run thing:/);
    assert.match(printed[1]!, /unknown option --bogus/);
  });
});
