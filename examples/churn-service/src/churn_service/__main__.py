"""`python -m churn_service serve --model model.json --port 8000`."""

from __future__ import annotations

import argparse
import logging
import os

from .api import serve
from .model import Model


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="churn-service")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="serve the model over HTTP")
    s.add_argument("--model", default=os.environ.get("MODEL_PATH", "model.json"))
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    s.add_argument("--port-file", help="write the bound port here (useful with --port 0)")
    args = p.parse_args(argv)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
    model = Model.load(args.model)
    server = serve(model, args.host, args.port)
    port = server.server_address[1]
    if args.port_file:
        with open(args.port_file, "w") as f:
            f.write(str(port))
    logging.getLogger("churn_service").info(
        "serving model %s on http://%s:%d", model.version, args.host, port
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
