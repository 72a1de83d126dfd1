#!/usr/bin/env bash
# npm run demo: start one local test server, then `pulumi up --stack dev` on a local file backend.
set -euo pipefail
cd "$(dirname "$0")/.."
export FLEET_DIR=/tmp/fleet-demo FLEET_NODES="demo=127.0.0.21" FLEET_DB=""
bash test/hosts/up.sh

# The Pulumi CLI: the one on PATH; under `npm run`, PATH starts with node_modules/.bin, where the
# pinned `pulumi` npm package downloads the real CLI on first use. That needs internet access.
if ! why=$(pulumi version 2>&1 >/dev/null); then
  cat >&2 <<MSG
demo: the test server is up (127.0.0.21), but the Pulumi CLI cannot run here: ${why:-not found}
Install it (https://www.pulumi.com/docs/install/, e.g. \`curl -fsSL https://get.pulumi.com | sh\`),
then run \`npm run demo\` again.
MSG
  exit 3
fi
PULUMI=(pulumi)

export PULUMI_BACKEND_URL="file://$PWD/.pulumi" PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-}"
mkdir -p .pulumi
"${PULUMI[@]}" stack select dev --create --non-interactive
"${PULUMI[@]}" up --stack dev --yes --non-interactive --diff
"${PULUMI[@]}" stack output --stack dev --json
echo "demo: curl http://127.0.0.21:8080/api/version -> $(curl -s http://127.0.0.21:8080/api/version)"
