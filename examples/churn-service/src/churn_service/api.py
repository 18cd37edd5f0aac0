"""A tiny HTTP API: GET /health and POST /predict."""

from __future__ import annotations

import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .data import InvalidRecord, features
from .model import Model

MAX_BODY = 1 << 20
MAX_INSTANCES = 1000
log = logging.getLogger("churn_service")


def make_handler(model: Model):
    class Handler(BaseHTTPRequestHandler):
        server_version = "churn-service"

        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt, *args):  # route access logs through logging
            log.info("%s %s", self.address_string(), fmt % args)

        def do_GET(self):
            if self.path == "/health":
                self._send(200, {"status": "ok", "model_version": model.version})
            else:
                self._send(404, {"error": f"no route {self.path}"})

        def do_POST(self):
            if self.path != "/predict":
                self._send(404, {"error": f"no route {self.path}"})
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                self._send(400, {"error": "bad Content-Length"})
                return
            if length <= 0 or length > MAX_BODY:
                self._send(
                    413 if length > MAX_BODY else 400, {"error": "body must be 1 byte to 1 MiB"}
                )
                return
            try:
                body = json.loads(self.rfile.read(length))
                instances = body["instances"]
                if not isinstance(instances, list) or not 0 < len(instances) <= MAX_INSTANCES:
                    raise InvalidRecord(
                        f"'instances' must be a list of 1 to {MAX_INSTANCES} records"
                    )
                rows = [features(r) for r in instances]
            except (json.JSONDecodeError, UnicodeDecodeError):
                self._send(400, {"error": "body is not valid JSON"})
                return
            except (KeyError, TypeError):
                self._send(400, {"error": 'expected {"instances": [...]}'})
                return
            except InvalidRecord as e:
                self._send(422, {"error": str(e)})
                return
            probs = model.predict_proba(rows)
            self._send(
                200,
                {
                    "model_version": model.version,
                    "predictions": [
                        {"churn_probability": round(p, 6), "churn": p >= 0.5} for p in probs
                    ],
                },
            )

    return Handler


def serve(model: Model, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    return ThreadingHTTPServer((host, port), make_handler(model))
