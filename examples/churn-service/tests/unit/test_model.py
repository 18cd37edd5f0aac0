import pytest

from churn_service.model import Model, accuracy


def test_save_load_roundtrip(tmp_path, trained, split):
    p = tmp_path / "m.json"
    trained.save(p)
    loaded = Model.load(p)
    assert loaded.version == trained.version
    assert loaded.predict_proba(split[1].x[:5]) == trained.predict_proba(split[1].x[:5])


def test_wrong_feature_count(trained):
    with pytest.raises(ValueError):
        trained.predict_proba([[1.0, 2.0]])


def test_training_beats_majority_baseline(trained, split):
    held = split[1]
    majority = max(sum(held.y), len(held.y) - sum(held.y)) / len(held.y)
    assert accuracy(trained, held) > majority
