import numpy as np

from tfvr.data.masks import moving_polygon_masks, random_shape


def test_masks_shape_values_and_determinism():
    m = moving_polygon_masks(5, 60, 108, seed=4)
    assert m.shape == (5, 60, 108) and m.dtype == np.uint8
    assert set(np.unique(m)) <= {0, 1} and m.sum() > 0
    np.testing.assert_array_equal(m, moving_polygon_masks(5, 60, 108, seed=4))


def test_about_half_stationary_and_moving_ones_move():
    stationary = 0
    for seed in range(40):
        m = moving_polygon_masks(6, 48, 64, seed=seed)
        still = all(np.array_equal(m[0], m[t]) for t in range(1, 6))
        stationary += still
        assert m.reshape(6, -1).sum(axis=1).min() > 0  # never leaves the frame
    assert 10 <= stationary <= 30
    assert moving_polygon_masks(6, 48, 64, seed=0, stationary_prob=1.0).std(axis=0).max() == 0


def test_shape_size_between_a_third_and_the_frame():
    rng = np.random.default_rng(0)
    for _ in range(10):
        s = random_shape(rng, 30, 50, edge_num=7, ratio=0.7)
        assert s.shape[0] <= 30 and s.shape[1] <= 50 and s.shape[0] >= 25 and s.shape[1] >= 45
        assert 0.3 < s.mean() < 1.0
    m = moving_polygon_masks(3, 90, 90, seed=1, stationary_prob=1.0)[0]
    ys, xs = np.nonzero(m)
    assert ys.max() - ys.min() + 1 >= 29 and xs.max() - xs.min() + 1 >= 29
