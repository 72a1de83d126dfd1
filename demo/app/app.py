"""fleet demo service: /api/health and /api/version (the deployed commit, as fleet exposes it)."""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = os.environ.get("APP_HOST", "127.0.0.1")
PORT = int(os.environ.get("APP_PORT", "8080"))
MODE = os.environ.get("APP_MODE", "ok")  # ok | unhealthy | crash | wrong-version
if MODE == "crash":
    print("crashing at start on purpose", flush=True)
    sys.exit(3)


class Handler(BaseHTTPRequestHandler):
    def _send(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/api/health":
            if MODE == "unhealthy":
                self._send(500, {"status": "broken"})
            else:
                self._send(200, {"status": "ok"})
        elif self.path == "/api/version":
            commit = "0000000" if MODE == "wrong-version" else os.environ.get("FLEET_COMMIT", "")
            self._send(200, {"commit": commit, "release": os.environ.get("FLEET_RELEASE", "")})
        elif self.path == "/api/env":
            # Echoes the environment so tests can check values arrive byte-exact.
            self._send(200, {k: v for k, v in os.environ.items() if k.startswith(("APP_", "FLEET_", "T_"))})
        else:
            self._send(404, {"error": "not found"})

    def log_message(self, fmt, *args):
        pass


print(f"app starting on {HOST}:{PORT} mode={MODE} release={os.environ.get('FLEET_RELEASE')}", flush=True)
ThreadingHTTPServer((HOST, PORT), Handler).serve_forever()
