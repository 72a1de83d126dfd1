/** An OpenSSH key pair, as ssh2's generator returns it. */
export interface OpenSshKeyPair {
  readonly private: string;
  readonly public: string;
}

/**
 * A new ed25519 key pair in OpenSSH format. ssh2 (1.17) strips every leading zero byte of the
 * public key while formatting it, so about one key in 256 comes out malformed: ssh2, ssh-keygen
 * and sshd all reject it. A pair is kept only once its private half parses.
 */
export function generateEd25519(
  comment: string,
  generate: (comment: string) => OpenSshKeyPair = (c) =>
    (require("ssh2") as typeof import("ssh2")).utils.generateKeyPairSync("ed25519", { comment: c }),
): OpenSshKeyPair {
  const { utils } = require("ssh2") as typeof import("ssh2");
  for (let attempt = 0; attempt < 32; attempt++) {
    const pair = generate(comment);
    if (!(utils.parseKey(pair.private) instanceof Error)) return pair;
  }
  throw new Error("could not generate a well-formed ed25519 key in 32 attempts");
}
