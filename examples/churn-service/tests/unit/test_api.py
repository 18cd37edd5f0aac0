import json
import threading
import urllib.error
import urllib.request

import pytest

from churn_service.api import serve


@pytest.fixture()
def base(trained):
    server = serve(trained, port=0)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def post(url, body: bytes):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_health(base, trained):
    with urllib.request.urlopen(f"{base}/health", timeout=5) as r:
        assert json.load(r) == {"status": "ok", "model_version": trained.version}


def test_predict(base):
    inst = {
        "tenure_months": 1,
        "monthly_charges": 99,
        "support_calls": 5,
        "contract": "month-to-month",
        "has_fiber": True,
    }
    status, body = post(f"{base}/predict", json.dumps({"instances": [inst, inst]}).encode())
    assert status == 200
    assert len(body["predictions"]) == 2
    assert body["predictions"][0]["churn"] is True


@pytest.mark.parametrize(
    "payload,code",
    [
        (b"not json", 400),
        (b'{"rows": []}', 400),
        (b'{"instances": []}', 422),
        (b'{"instances": [{"contract": "x"}]}', 422),
    ],
)
def test_bad_requests(base, payload, code):
    status, body = post(f"{base}/predict", payload)
    assert status == code
    assert "error" in body
