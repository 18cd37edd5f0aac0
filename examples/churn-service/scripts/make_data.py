"""Generates data/churn.csv: a synthetic but realistic telecom churn table.

Deterministic (fixed seed), so the committed CSV can be regenerated exactly:
    python scripts/make_data.py > data/churn.csv
"""

import csv
import math
import random
import sys

CONTRACTS = ["month-to-month", "one-year", "two-year"]


def main() -> None:
    rng = random.Random(20261127)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(
        [
            "customer_id",
            "tenure_months",
            "monthly_charges",
            "support_calls",
            "contract",
            "has_fiber",
            "churned",
        ]
    )
    for i in range(2000):
        tenure = rng.randint(0, 72)
        contract = rng.choices(CONTRACTS, weights=[0.55, 0.25, 0.20])[0]
        has_fiber = rng.random() < 0.45
        charges = round(20 + rng.random() * 60 + (25 if has_fiber else 0), 2)
        calls = min(9, int(rng.expovariate(0.7)))
        z = (
            1.2
            - 0.06 * tenure
            + 0.025 * (charges - 60)
            + 0.45 * calls
            + {"month-to-month": 0.9, "one-year": -0.8, "two-year": -2.0}[contract]
            + (0.4 if has_fiber else 0.0)
        )
        p = 1 / (1 + math.exp(-z))
        churned = int(rng.random() < p)
        writer.writerow([f"C{i:05d}", tenure, charges, calls, contract, int(has_fiber), churned])


if __name__ == "__main__":
    main()
