"""Train the model from the CSV and write it with its held-out metrics."""

from __future__ import annotations

import argparse
import json

from . import data, model


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", default="data/churn.csv")
    p.add_argument("--out", default="model.json")
    args = p.parse_args(argv)
    ds = data.load(args.data)
    train, held_out = data.split(ds)
    m = model.train(train)
    m.metrics = {
        "accuracy_train": round(model.accuracy(m, train), 4),
        "accuracy_held_out": round(model.accuracy(m, held_out), 4),
        "rows": len(ds),
    }
    m.save(args.out)
    print(json.dumps({"model": args.out, "version": m.version, **m.metrics}))


if __name__ == "__main__":
    main()
