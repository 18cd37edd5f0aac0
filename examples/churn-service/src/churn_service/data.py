"""Loading the churn table and turning rows into feature vectors."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

CONTRACTS = ("month-to-month", "one-year", "two-year")
FEATURES = (
    "tenure_months",
    "monthly_charges",
    "support_calls",
    "contract_one_year",
    "contract_two_year",
    "has_fiber",
)


class InvalidRecord(ValueError):
    """A customer record that cannot be turned into features."""


@dataclass(frozen=True)
class Dataset:
    x: list[list[float]]
    y: list[int]

    def __len__(self) -> int:
        return len(self.y)


def features(record: dict) -> list[float]:
    """Feature vector for one customer; raises InvalidRecord on bad input."""
    try:
        tenure = float(record["tenure_months"])
        charges = float(record["monthly_charges"])
        calls = float(record["support_calls"])
        contract = str(record["contract"])
        fiber = record["has_fiber"]
    except KeyError as e:
        raise InvalidRecord(f"missing field {e.args[0]!r}") from None
    except (TypeError, ValueError) as e:
        raise InvalidRecord(f"not a number: {e}") from None
    if contract not in CONTRACTS:
        raise InvalidRecord(f"contract must be one of {', '.join(CONTRACTS)}, got {contract!r}")
    if tenure < 0 or charges < 0 or calls < 0:
        raise InvalidRecord("tenure_months, monthly_charges and support_calls must be >= 0")
    if isinstance(fiber, str):
        fiber = fiber.strip().lower() in ("1", "true", "yes")
    return [
        tenure,
        charges,
        calls,
        1.0 if contract == "one-year" else 0.0,
        1.0 if contract == "two-year" else 0.0,
        1.0 if fiber else 0.0,
    ]


def load(path: str | Path) -> Dataset:
    x, y = [], []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            x.append(features(row))
            y.append(int(row["churned"]))
    return Dataset(x, y)


def split(ds: Dataset, holdout: float = 0.25, seed: int = 7) -> tuple[Dataset, Dataset]:
    """A deterministic shuffle split into (train, held-out)."""
    idx = list(range(len(ds)))
    random.Random(seed).shuffle(idx)
    cut = int(len(idx) * (1 - holdout))

    def pick(ids: list[int]) -> Dataset:
        return Dataset([ds.x[i] for i in ids], [ds.y[i] for i in ids])

    return pick(idx[:cut]), pick(idx[cut:])
