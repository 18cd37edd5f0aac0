"""Check a deployed environment answers: GET /health and POST /predict.

python scripts/check_deployment.py http://127.0.0.1:PORT [--canary]

With --canary the requests carry `X-Launchway-Canary: always`, so they
reach the canary of a rollout in progress (the analysis step of prod's
canary runs this).
"""

from __future__ import annotations

import json
import sys
import urllib.request

SAMPLE = {
    "instances": [
        {
            "tenure_months": 2,
            "monthly_charges": 95.5,
            "support_calls": 4,
            "contract": "month-to-month",
            "has_fiber": 1,
        }
    ]
}


def main() -> int:
    args = [a for a in sys.argv[1:] if a != "--canary"]
    if len(args) != 1 or not args[0].startswith("http"):
        print("usage: check_deployment.py http://HOST:PORT [--canary]", file=sys.stderr)
        return 2
    base = args[0].rstrip("/")
    side = {"X-Launchway-Canary": "always"} if "--canary" in sys.argv else {}
    health = json.load(
        urllib.request.urlopen(urllib.request.Request(f"{base}/health", headers=side), timeout=5)
    )
    assert health["status"] == "ok", health
    req = urllib.request.Request(
        f"{base}/predict",
        data=json.dumps(SAMPLE).encode(),
        headers={"Content-Type": "application/json", **side},
    )
    pred = json.load(urllib.request.urlopen(req, timeout=5))
    p = pred["predictions"][0]["churn_probability"]
    assert 0.0 <= p <= 1.0, pred
    print(f"{base}/predict answers: model {health['model_version']}, churn probability {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
