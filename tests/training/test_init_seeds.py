"""Initial weights follow the seed, for every family: the same seed builds the same weights, another seed other
weights, and no two same-shape random kernels start equal (a shared Keras initializer instance does both wrong: it
repeats its values on every call and takes its seed when constructed, e.g. at import)."""

import keras
import numpy as np
import pytest

from tests.training.test_mixed_precision_families import FAMILIES


def _build(family, seed, tmp_path):
    make = FAMILIES[family]
    task_cls, cfg, _ = make(tmp_path) if family == "memvsr" else make()
    keras.utils.set_random_seed(seed)  # what Trainer.build does with trainer.seed
    models = task_cls(cfg).build_models()
    # keyed by creation order too: Keras' automatic layer names (conv2d, conv2d_17) differ between builds
    return {f"{i}:{v.path}": v.numpy().copy()
            for i, v in enumerate(v for m in models.values() for v in m.weights)}


def _path(key):
    return key.split(":", 1)[1]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_initial_weights_follow_the_seed(tmp_path, family):
    a, again, other = (_build(family, s, tmp_path) for s in (0, 0, 1))
    assert [a[k].shape for k in a] == [again[k].shape for k in again] == [other[k].shape for k in other]
    again, other = (dict(zip(a, d.values())) for d in (again, other))
    for k in a:
        np.testing.assert_array_equal(a[k], again[k], err_msg=f"{family}: {k} differs between two seed-0 builds")
    # random kernels (biases, norms' scales and constant-initialised heads such as STTN-R's flow bias do not count)
    random = [k for k, v in a.items() if _path(k).endswith("kernel") and v.size > 1 and np.std(v) > 0]
    assert random, family
    same = [k for k in random if np.array_equal(a[k], other[k])]
    assert not same, f"{family}: seed 1 builds the same values as seed 0 for {same[:5]}"
    by_value = {}
    for k in random:
        by_value.setdefault((a[k].shape, a[k].tobytes()), []).append(k)
    twins = [names for names in by_value.values() if len(names) > 1]
    assert not twins, f"{family}: same-shape weights start with identical values: {twins[:3]}"
