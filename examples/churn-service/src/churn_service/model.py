"""Logistic regression with standardised features, trained by gradient descent.

Pure Python on purpose: the example installs nothing heavy and runs anywhere.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from .data import FEATURES, Dataset


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1 / (1 + math.exp(-z))
    e = math.exp(z)
    return e / (1 + e)


@dataclass
class Model:
    weights: list[float]
    bias: float
    means: list[float]
    scales: list[float]
    metrics: dict = field(default_factory=dict)

    def predict_proba(self, rows: list[list[float]]) -> list[float]:
        out = []
        for row in rows:
            if len(row) != len(self.weights):
                raise ValueError(f"expected {len(self.weights)} features, got {len(row)}")
            z = self.bias
            for w, v, m, s in zip(self.weights, row, self.means, self.scales):
                z += w * (v - m) / s
            out.append(_sigmoid(z))
        return out

    def predict(self, rows: list[list[float]], threshold: float = 0.5) -> list[int]:
        return [int(p >= threshold) for p in self.predict_proba(rows)]

    def to_json(self) -> str:
        body = {
            "features": list(FEATURES),
            "weights": self.weights,
            "bias": self.bias,
            "means": self.means,
            "scales": self.scales,
            "metrics": self.metrics,
        }
        return json.dumps(body, indent=2, sort_keys=True)

    @property
    def version(self) -> str:
        """Content hash: the same training data and code give the same version."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Model:
        d = json.loads(Path(path).read_text())
        if d.get("features") != list(FEATURES):
            raise ValueError(f"{path}: model was trained on different features")
        return cls(d["weights"], d["bias"], d["means"], d["scales"], d.get("metrics", {}))


def train(ds: Dataset, epochs: int = 300, rate: float = 0.3, l2: float = 1e-3) -> Model:
    n, k = len(ds), len(ds.x[0])
    means = [sum(r[j] for r in ds.x) / n for j in range(k)]
    scales = []
    for j in range(k):
        var = sum((r[j] - means[j]) ** 2 for r in ds.x) / n
        scales.append(math.sqrt(var) or 1.0)
    xs = [[(r[j] - means[j]) / scales[j] for j in range(k)] for r in ds.x]
    w, b = [0.0] * k, 0.0
    for _ in range(epochs):
        gw, gb = [0.0] * k, 0.0
        for row, label in zip(xs, ds.y):
            err = _sigmoid(b + sum(wi * vi for wi, vi in zip(w, row))) - label
            gb += err
            for j in range(k):
                gw[j] += err * row[j]
        b -= rate * gb / n
        w = [wi - rate * (g / n + l2 * wi) for wi, g in zip(w, gw)]
    return Model(w, b, means, scales)


def accuracy(model: Model, ds: Dataset) -> float:
    preds = model.predict(ds.x)
    return sum(int(p == y) for p, y in zip(preds, ds.y)) / len(ds)
