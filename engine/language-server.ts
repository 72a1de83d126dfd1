/**
 * Hosting the program for a CLI that has no Node.js language host: Pulumi's own LanguageRuntime
 * server from the Node.js SDK (the Automation API serves inline programs with it), on a loopback
 * port, for `pulumi … --client=<address>`. The SDK marks the class internal, so it is loaded by
 * path from the exactly pinned @pulumi/pulumi; test/engine proves it against the real CLI.
 */
import * as grpc from "@grpc/grpc-js";

type RunCallback = (err: unknown, resp?: unknown) => void;
interface LanguageServer {
  onPulumiExit(hasError: boolean): void;
  run(call: unknown, callback: RunCallback): Promise<void>;
}
type LanguageServerClass = new (program: () => Promise<Record<string, unknown>>) => LanguageServer;

const { LanguageServer } = require("@pulumi/pulumi/automation/server") as { LanguageServer: LanguageServerClass };
const langrpc = require("@pulumi/pulumi/proto/language_grpc_pb") as {
  LanguageRuntimeService: grpc.ServiceDefinition;
};
const langproto = require("@pulumi/pulumi/proto/language_pb") as {
  RunResponse: new () => { setBail(bail: boolean): void };
};
const { grpcChannelOptions } = require("@pulumi/pulumi/runtime") as { grpcChannelOptions: grpc.ChannelOptions };

export interface HostedProgram {
  /** `127.0.0.1:<port>`, for `--client`. */
  readonly address: string;
  /** Stops serving once the CLI has exited. */
  close(cliFailed: boolean): Promise<void>;
}

/**
 * `reported(err)`: the program's error was already logged in full (the SDK logs a RunError's
 * message), so the run answers `bail`, as Pulumi's Node.js language host does, and the CLI does
 * not print it a second time.
 */
export async function hostProgram(
  program: () => Promise<Record<string, unknown>>,
  reported: (err: unknown) => boolean = () => false,
): Promise<HostedProgram> {
  const server = new grpc.Server(grpcChannelOptions);
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
  server.addService(langrpc.LanguageRuntimeService, language as unknown as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    address: `127.0.0.1:${port}`,
    close: async (cliFailed) => {
      try {
        language.onPulumiExit(cliFailed);
      } finally {
        server.forceShutdown();
      }
    },
  };
}
