from pathlib import Path

import pytest

from churn_service import data, model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def dataset():
    return data.load(ROOT / "data" / "churn.csv")


@pytest.fixture(scope="session")
def split(dataset):
    return data.split(dataset)


@pytest.fixture(scope="session")
def trained(split):
    return model.train(split[0])
