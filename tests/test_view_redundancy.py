"""experiments/view_redundancy.py: the measure behind "what one view gains, another already carries"."""
import numpy as np
import pytest


def test_a_copied_view_is_explained_and_an_independent_one_is_not(benchmark_script):
    mod = benchmark_script("view_redundancy")
    rng = np.random.default_rng(0)

    def views(n):
        a = rng.normal(size=(n, 4))
        return np.hstack([a, a + 0.01 * rng.normal(size=(n, 4)),
                          rng.normal(size=(n, 4))])
    r2 = mod.explained_by_others(views(2000), views(500), width=4)
    assert r2[0] > 0.99 and r2[1] > 0.99
    assert abs(r2[2]) < 0.05


def test_components_count_the_directions_the_features_span(benchmark_script):
    mod = benchmark_script("view_redundancy")
    rng = np.random.default_rng(1)
    low_rank = rng.normal(size=(1000, 3)) @ rng.normal(size=(3, 12))
    assert mod.components_for(low_rank + 1e-6 * rng.normal(size=(1000, 12)))["0.99"] <= 3
    assert mod.components_for(rng.normal(size=(1000, 12)))["0.9"] >= 10


def test_features_that_are_not_several_views_are_refused(benchmark_script):
    mod = benchmark_script("view_redundancy")
    with pytest.raises(ValueError, match="width 10"):
        mod.explained_by_others(np.zeros((5, 10)), np.zeros((5, 10)), width=4)
