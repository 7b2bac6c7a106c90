"""Scores, probes, kNN, ranking metrics and the collapse monitor on hand-checked cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_utils.evaluate import (
    extract_features,
    knn_accuracy,
    linear_probe,
    per_class_f1,
    predict,
    report,
    scores,
    seed_spread,
    tuned_probe,
)


def test_scores_hand_worked_case():
    y_true = [0, 0, 1, 1]
    y_pred = [0, 1, 1, 1]
    # class 0: precision 1, recall 1/2 -> F1 2/3; class 1: precision 2/3, recall 1 -> F1 4/5
    result = scores(y_true, y_pred)
    assert result["accuracy"] == pytest.approx(0.75)
    assert result["macro_f1"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert per_class_f1(y_true, y_pred, 3) == pytest.approx([2 / 3, 4 / 5, 0.0])
    assert "shirt" in report(y_true, y_pred, ["shirt", "shoe", "bag"])


def test_knn_and_linear_probe_on_separable_data():
    g = np.random.default_rng(0)
    centres = np.array([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0]])
    y = np.repeat(np.arange(3), 40)
    x = centres[y] + g.normal(size=(120, 3))
    assert knn_accuracy(x[::2], y[::2], x[1::2], y[1::2], k=5) == pytest.approx(1.0)
    assert linear_probe(x[::2], y[::2], x[1::2], y[1::2])["accuracy"] == pytest.approx(1.0)
    # Shuffled labels carry no signal: the probe must not find any.
    shuffled = g.permutation(y)
    assert linear_probe(x[::2], shuffled[::2], x[1::2], shuffled[1::2])["accuracy"] < 0.6


def test_feature_extraction_and_prediction_scale_uint8_and_restore_mode():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.BatchNorm1d(4))
    model.train()
    images = torch.tensor([[[[0, 255], [255, 0]]], [[[255, 255], [0, 0]]]], dtype=torch.uint8)
    features = extract_features(model, images, batch_size=1)
    assert torch.allclose(
        features, images.flatten(1).float() / 255 / (1 + 1e-5) ** 0.5
    )  # fresh BN stats: x/sqrt(1+eps)
    assert model.training, "the caller's train/eval mode must be restored"
    assert predict(model, images).tolist() == [1, 0]


def test_tuned_probe_keeps_the_C_with_the_best_validation_accuracy():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    y = np.arange(300) % 3
    x = rng.normal(size=(300, 20)) + 0.6 * np.eye(3)[y] @ rng.normal(size=(3, 20))
    train, validation = (x[:60], y[:60]), (x[60:], y[60:])
    Cs = (0.001, 0.1, 10.0)
    expected = []
    for C in Cs:  # each C fitted and scored by hand
        scaler = StandardScaler().fit(train[0])
        model = LogisticRegression(C=C, max_iter=2000, tol=1e-3).fit(scaler.transform(train[0]), train[1])
        expected.append((model.predict(scaler.transform(validation[0])) == validation[1]).mean())
    probe = tuned_probe(train, validation, Cs=Cs)
    assert probe[-1].C == Cs[int(np.argmax(expected))]
    labels = np.arange(60) % 3
    separable = 10 * np.eye(3)[labels] + rng.normal(scale=0.1, size=(60, 3))  # every C scores 100 %
    tied = tuned_probe((separable[:30], labels[:30]), (separable[30:], labels[30:]), Cs=(0.5, 5.0))
    assert tied[-1].C == 0.5, "on a tie the first C is kept"
    with pytest.raises(ValueError, match="at least one"):
        tuned_probe(train, validation, Cs=())


def test_seed_spread_is_the_mean_and_sample_std():
    import statistics

    values = [0.61, 0.64, 0.58]
    spread = seed_spread(values)
    assert spread["mean"] == pytest.approx(statistics.mean(values))
    assert spread["std"] == pytest.approx(statistics.stdev(values)), "n - 1 in the denominator"
    assert spread["runs"] == 3 and seed_spread([0.5])["std"] == 0.0


def test_probes_fit_float32_tensors_as_the_float32_arrays_they_hold():
    # scikit-learn turns a float32 tensor into float64 and fits slightly other probes; the stored runs
    # fitted the float32 array of the same features
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from course_utils.evaluate import tuned_probe

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(600, 16, generator=generator) * torch.rand(16, generator=generator) * 5
    y = (x[:, :3].sum(1) > 0).long() + (x[:, 3] > 1).long()
    fitted = tuned_probe((x[:300], y[:300]), (x[300:], y[300:]), Cs=(0.1,))
    by_hand = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000, tol=1e-3))
    by_hand.fit(x[:300].numpy(), y[:300].numpy())
    assert np.array_equal(fitted[-1].coef_, by_hand[-1].coef_)
