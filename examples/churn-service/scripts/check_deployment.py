"""Check a deployed environment answers: GET /health and POST /predict.

python scripts/check_deployment.py http://127.0.0.1:PORT
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
    if len(sys.argv) != 2 or not sys.argv[1].startswith("http"):
        print("usage: check_deployment.py http://HOST:PORT", file=sys.stderr)
        return 2
    base = sys.argv[1].rstrip("/")
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
    print(f"{base}/predict answers: model {health['model_version']}, churn probability {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
