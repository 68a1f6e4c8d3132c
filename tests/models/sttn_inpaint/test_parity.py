"""STTN-I against the authors' PyTorch code (../shared/golden/sttn_inpaint_*.npz, random float16 weights)."""

import numpy as np
import pytest

from tests.helpers import golden, golden_weights
from tfvr.models.sttn_inpaint import discriminator_from_authors, from_authors
from tfvr.models.sttn_inpaint.generator import derive_patch_sizes


@pytest.fixture(scope="module")
def gen_case():
    z = golden("sttn_inpaint_generator")
    frames = z["frames"].transpose(0, 1, 3, 4, 2)  # (B,T,C,H,W) -> (B,T,H,W,C)
    masks = z["masks"].transpose(0, 1, 3, 4, 2)
    return golden_weights(z), frames, masks, z["y"].transpose(0, 2, 3, 1)


def test_released_patch_sizes_are_derived_at_432x240():
    assert derive_patch_sizes(60, 108, (1, 3, 6, 12)) == ((108, 60), (36, 20), (18, 10), (9, 5))


def test_generator_matches_authors_code(gen_case):
    weights, frames, masks, want = gen_case
    gen = from_authors(weights)
    assert not gen.mask_attention  # the released behaviour is the default
    got = gen((frames * (1 - masks), masks)).numpy()
    assert got.shape == (1, 3, 240, 432, 3)
    err = np.abs(got[0] - want).max()
    assert err <= 1e-4, err


def test_mask_attention_variant_is_a_different_model(gen_case):
    weights, frames, masks, want = gen_case
    gen = from_authors(weights, mask_attention=True)
    # 2 frames cropped to 96x192 (derived patch sizes), to stay fast: the variant loads the same weights and
    # differs from the released behaviour only through the attention mask.
    f, m = frames[:, :2, :96, :192], masks[:, :2, :96, :192]
    got = gen((f * (1 - m), m)).numpy()
    released = from_authors(weights)((f * (1 - m), m)).numpy()
    assert got.shape == (1, 2, 96, 192, 3) and np.isfinite(got).all()
    assert m.mean() > 0.05 and np.abs(got - released).max() > 1e-6
    assert gen.count_params() == from_authors(weights).count_params()


def test_discriminator_conv_stack_matches_authors_code():
    z = golden("sttn_inpaint_discriminator")
    disc = discriminator_from_authors(golden_weights(z))
    assert not disc.use_spectral_norm  # the golden stack was built without SN, so every conv has a bias
    got = disc(z["video"].transpose(0, 2, 3, 1)).numpy()  # (T,C,H,W) -> (T,H,W,C): batch folded into time
    want = z["y"].transpose(0, 1, 3, 4, 2)  # (1,T',C,H',W') -> (1,T',H',W',C)
    assert got.shape == want.shape
    err = np.abs(got - want).max()
    assert err <= 1e-4, err
