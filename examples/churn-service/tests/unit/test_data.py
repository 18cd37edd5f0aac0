import pytest

from churn_service.data import FEATURES, InvalidRecord, features, split


def record(**over):
    r = {
        "tenure_months": 12,
        "monthly_charges": 70.5,
        "support_calls": 1,
        "contract": "one-year",
        "has_fiber": "1",
    }
    r.update(over)
    return r


def test_features_encode_contract_and_fiber():
    f = features(record())
    assert len(f) == len(FEATURES)
    assert f[3:] == [1.0, 0.0, 1.0]


@pytest.mark.parametrize(
    "bad",
    [
        {"contract": "weekly"},
        {"tenure_months": "abc"},
        {"monthly_charges": -1},
    ],
)
def test_bad_records_are_rejected(bad):
    with pytest.raises(InvalidRecord):
        features(record(**bad))


def test_missing_field():
    r = record()
    del r["contract"]
    with pytest.raises(InvalidRecord, match="contract"):
        features(r)


def test_split_is_deterministic_and_disjoint(dataset):
    a1, b1 = split(dataset)
    a2, b2 = split(dataset)
    assert a1.y == a2.y and b1.y == b2.y
    assert len(a1) + len(b1) == len(dataset)
