import numpy as np
import pytest

from faceattr.inference.heads import fit_linear_svms


def test_joint_lbfgs_matches_liblinear():
    """fit_linear_svms solves LinearSVC's objective (squared hinge, L2); it must agree with liblinear."""
    from sklearn.svm import LinearSVC
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 20))
    w_true = rng.normal(size=(20, 3))
    y = (x @ w_true + rng.normal(scale=2.0, size=(400, 3)) > 0).astype(np.uint8)
    w, b = fit_linear_svms(x, y, c=0.1)
    for k in range(3):
        ref = LinearSVC(C=0.1, dual=False, tol=1e-8, intercept_scaling=1e4).fit(x, y[:, k])
        np.testing.assert_allclose(w[k], ref.coef_[0], atol=2e-3)
        assert b[k] == pytest.approx(ref.intercept_[0], abs=2e-3)
        assert ((x @ w[k] + b[k] > 0) == ref.predict(x)).mean() > 0.99


def test_heads_score_read_only_features_without_warning(pretrained_bundle):
    import warnings
    from faceattr.inference.heads import LinearHeads
    heads = LinearHeads(pretrained_bundle.heads())
    x = np.random.default_rng(0).normal(size=(4, heads.n_features)).astype(np.float32)
    x.flags.writeable = False  # what a memory-mapped feature cache hands over
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = heads.scores(x)
    assert s.shape == (4, 40)
