"""Start the service from a release directory, check /health and /predict, stop it.

python scripts/smoke_test.py RELEASE_DIR
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

from check_deployment import SAMPLE


def read_port(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


def main() -> int:
    release = sys.argv[1] if len(sys.argv) > 1 else "."
    port_file = os.path.join(tempfile.mkdtemp(), "port")
    env = dict(os.environ, PYTHONPATH=os.path.join(release, "src"))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "churn_service",
            "serve",
            "--model",
            os.path.join(release, "model.json"),
            "--port",
            "0",
            "--port-file",
            port_file,
        ],
        env=env,
    )
    try:
        for _ in range(100):
            if read_port(port_file):
                break
            if proc.poll() is not None:
                print("the service exited early", file=sys.stderr)
                return 1
            time.sleep(0.1)
        base = f"http://127.0.0.1:{read_port(port_file)}"
        health = json.load(urllib.request.urlopen(f"{base}/health", timeout=5))
        assert health["status"] == "ok", health
        req = urllib.request.Request(
            f"{base}/predict",
            data=json.dumps(SAMPLE).encode(),
            headers={"Content-Type": "application/json"},
        )
        pred = json.load(urllib.request.urlopen(req, timeout=5))
        p = pred["predictions"][0]["churn_probability"]
        assert 0.0 <= p <= 1.0, pred
        print(f"healthy at {base}: model {health['model_version']}, sample churn probability {p}")
        return 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
