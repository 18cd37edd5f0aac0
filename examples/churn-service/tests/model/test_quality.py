"""Model quality gates: these decide whether a model may ship."""

from churn_service.model import accuracy

MIN_HELD_OUT_ACCURACY = 0.75


def test_held_out_accuracy_meets_threshold(trained, split):
    acc = accuracy(trained, split[1])
    assert acc >= MIN_HELD_OUT_ACCURACY, f"held-out accuracy {acc:.3f} < {MIN_HELD_OUT_ACCURACY}"


def test_prediction_shape(trained, split):
    rows = split[1].x
    assert len(trained.predict_proba(rows)) == len(rows)
    assert len(trained.predict(rows[:1])) == 1


def test_prediction_range(trained, split):
    probs = trained.predict_proba(split[1].x)
    assert all(0.0 <= p <= 1.0 for p in probs)
    # A useful model is not constant.
    assert max(probs) - min(probs) > 0.5


def test_risk_moves_the_right_way(trained):
    loyal = [60, 40.0, 0, 0.0, 1.0, 0.0]
    at_risk = [1, 105.0, 6, 0.0, 0.0, 1.0]
    p_loyal, p_risk = trained.predict_proba([loyal, at_risk])
    assert p_risk > p_loyal
