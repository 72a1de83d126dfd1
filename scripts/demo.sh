#!/usr/bin/env bash
# npm run demo: start one local test server (127.0.0.21), get the Pulumi CLI (tools/pulumi/ensure.sh:
# PATH, or built from source with Go and cached), then `pulumi up --stack dev` on a file backend
# under the project (.pulumi/, passphrase secrets), and show what the service answers (exit 1 if
# nothing does). A second run is a no-op: the engine finds nothing to change and fleet opens no SSH
# connection.
set -euo pipefail
cd "$(dirname "$0")/.."
export FLEET_DIR=/tmp/fleet-demo FLEET_NODES="demo=127.0.0.21" FLEET_DB=""
bash test/hosts/up.sh

bash tools/pulumi/ensure.sh >/dev/null || exit 3

# The demo's own backend and passphrase; export your own to use another (see README).
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$PWD/.pulumi}"
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-fleet-demo}"
mkdir -p .pulumi
pulumi() { node build/launch.js pulumi "$@"; }

pulumi stack select dev --create --non-interactive
url=http://127.0.0.21:8080/api/version
# Unchanged: a no-op that opens no SSH connection.
pulumi up --stack dev --yes --non-interactive --diff
if ! curl -sf --max-time 5 "$url" >/dev/null; then
  # A new demo host (its container was recreated: another host key, which the up above recorded
  # without a deploy; README "Host keys"), or one changed by hand: the state's word is not what
  # serves. A refresh reads the host as it is, and the up deploys what it lacks.
  echo "demo: nothing answers at $url: refreshing from the host, so that what it lacks is deployed again"
  pulumi up --stack dev --yes --non-interactive --diff --refresh
fi
answer=$(curl -sf --max-time 5 "$url") || {
  echo "demo: the service does not answer at $url after the deploy (journalctl -u hello on the demo host: npm run logs -- hello --stack dev)" >&2
  exit 1
}
echo "demo: the service answers at $url: $answer"
echo "demo: next: change demo/app/app.py, then \`npm run pulumi -- preview --diff --stack dev\` (README: the demo loop)"
