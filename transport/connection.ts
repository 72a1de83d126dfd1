// The type lives in model/ (plain data shared by every layer); transport/ keeps its old name.
export type { SshConnection } from "../model/connection";
