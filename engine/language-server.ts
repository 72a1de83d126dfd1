/**
 * Hosting the program for a CLI that has no Node.js language host: Pulumi's own LanguageRuntime
 * server from the Node.js SDK (the Automation API serves inline programs with it), on a loopback
 * port, for `pulumi … --client=<address>`. The SDK marks the class internal, so it is loaded by
 * path from the exactly pinned @pulumi/pulumi; test/engine proves it against the real CLI.
 *
 * The port is open before the SDK is loaded: the CLI starts (~0.4 s) while this process loads
 * the SDK (~0.3–0.6 s), and calls that arrive meanwhile wait for it (`load`).
 */
import type * as grpc from "@grpc/grpc-js";
import { traceEvent } from "../observe/trace";

type RunCallback = (err: unknown, resp?: unknown) => void;
interface LanguageServer {
  onPulumiExit(hasError: boolean): void;
  run(call: unknown, callback: RunCallback): Promise<void>;
}
type LanguageServerClass = new (program: () => Promise<Record<string, unknown>>) => LanguageServer;

export interface HostedProgram {
  /** `127.0.0.1:<port>`, for `--client`. */
  readonly address: string;
  /** Loads the SDK and starts answering (calls that came earlier were waiting for this). */
  load(): void;
  /** Stops serving once the CLI has exited. */
  close(cliFailed: boolean): Promise<void>;
}

/** The SDK's server around `program`, answering `bail` for errors `reported` says were logged. */
function languageServer(
  program: () => Promise<Record<string, unknown>>,
  reported: (err: unknown) => boolean,
): LanguageServer {
  const { LanguageServer } = require("@pulumi/pulumi/automation/server") as { LanguageServer: LanguageServerClass };
  const langproto = require("@pulumi/pulumi/proto/language_pb") as {
    RunResponse: new () => { setBail(bail: boolean): void };
  };
  const language = new LanguageServer(program);
  const run = language.run.bind(language);
  let answered = false;
  language.run = (call, callback) => {
    answered = false;
    // The SDK's server calls back twice on an error (the error, then a response): answer once.
    return run(call, (err, resp) => {
      if (answered) return;
      answered = true;
      if (err !== undefined && err !== null && reported(err)) {
        const bail = new langproto.RunResponse();
        bail.setBail(true);
        callback(null, bail);
        return;
      }
      callback(err, resp);
    });
  };
  return language;
}

/**
 * `reported(err)`: the program's error was already logged in full (the SDK logs a RunError's
 * message), so the run answers `bail`, as Pulumi's Node.js language host does, and the CLI does
 * not print it a second time. `firstCalled` runs once the CLI's first call has been answered.
 */
export async function hostProgram(
  program: () => Promise<Record<string, unknown>>,
  reported: (err: unknown) => boolean = () => false,
  firstCalled: () => void = () => undefined,
): Promise<HostedProgram> {
  let called = false;
  const grpcjs = require("@grpc/grpc-js") as typeof grpc;
  const langrpc = require("@pulumi/pulumi/proto/language_grpc_pb") as {
    LanguageRuntimeService: grpc.ServiceDefinition;
  };
  const { grpcChannelOptions } = require("@pulumi/pulumi/runtime/settings") as {
    grpcChannelOptions: grpc.ChannelOptions;
  };
  let ready!: (server: LanguageServer) => void;
  const language = new Promise<LanguageServer>((resolve) => (ready = resolve));
  let loaded: LanguageServer | undefined;

  // Every method of the service waits for the SDK's server, then is its method, or, where it has
  // none, the answer grpc-js gives an unimplemented method.
  const service = langrpc.LanguageRuntimeService;
  const implementation: Record<string, (...args: any[]) => unknown> = {};
  for (const [name, attrs] of Object.entries(service)) {
    implementation[name] = (...args: any[]) => {
      traceEvent("language-rpc", { name });
      if (!called) {
        called = true;
        setImmediate(firstCalled);
      }
      return language.then((server) => {
        const own = server as unknown as Record<string, ((...a: unknown[]) => unknown) | undefined>;
        const method = own[name] ?? (attrs.originalName ? own[attrs.originalName] : undefined);
        if (method) return method.apply(server, args);
        const status = { code: grpcjs.status.UNIMPLEMENTED, details: `${attrs.path} is not implemented` };
        if (typeof args[1] === "function") (args[1] as RunCallback)(status, null);
        else (args[0] as { emit(ev: string, e: unknown): void }).emit("error", status);
        return undefined;
      });
    };
  }
  const server = new grpcjs.Server(grpcChannelOptions);
  server.addService(service, implementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpcjs.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    address: `127.0.0.1:${port}`,
    load: () => {
      if (loaded) return;
      loaded = languageServer(program, reported);
      ready(loaded);
    },
    close: async (cliFailed) => {
      try {
        loaded?.onPulumiExit(cliFailed);
      } finally {
        server.forceShutdown();
      }
    },
  };
}
