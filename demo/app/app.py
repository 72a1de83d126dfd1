"""fleet's demo service: says hello, and reports the release fleet deployed (FLEET_COMMIT)."""
import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

ROUTES = {
    "/": lambda: {"hello": "from fleet's demo"},
    "/api/health": lambda: {"status": "ok"},
    "/api/version": lambda: {"commit": os.environ.get("FLEET_COMMIT", ""), "release": os.environ.get("FLEET_RELEASE", "")},
}


class Demo(BaseHTTPRequestHandler):
    def do_GET(self):
        route = ROUTES.get(self.path)
        body = json.dumps(route() if route else {"error": "not found"}).encode()
        self.send_response(200 if route else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)


HTTPServer((os.environ.get("APP_HOST", "127.0.0.1"), int(os.environ.get("APP_PORT", "8080"))), Demo).serve_forever()
