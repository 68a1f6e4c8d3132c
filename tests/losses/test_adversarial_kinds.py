"""`tfvr.losses.AdversarialLoss`: researchmm/STTN core/loss.py `AdversarialLoss` for hinge, nsgan and lsgan, each
against values computed by hand; and STTN-I training with each kind."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfvr.losses import AdversarialLoss

# Discriminator outputs: raw scores for hinge, sigmoid probabilities for nsgan / lsgan (STTN's D has
# use_sigmoid = GAN_LOSS != 'hinge').
SCORES = np.array([[-1.5, 0.25], [2.0, 0.5]], np.float32)
PROBS = np.array([[0.2, 0.9], [0.5, 0.75]], np.float32)


def test_hinge_by_hand():
    adv = AdversarialLoss("hinge")
    # D real: mean(relu(1 - x)) = mean(2.5, 0.75, 0, 0.5) = 0.9375
    assert float(adv(SCORES, True, True)) == pytest.approx(0.9375, abs=1e-7)
    # D fake: mean(relu(1 + x)) = mean(0, 1.25, 3, 1.5) = 1.4375
    assert float(adv(SCORES, False, True)) == pytest.approx(1.4375, abs=1e-7)
    # G: mean(-x) = -(−1.5 + 0.25 + 2 + 0.5) / 4 = -0.3125
    assert float(adv(SCORES, True, False)) == pytest.approx(-0.3125, abs=1e-7)
    assert not adv.needs_sigmoid


def test_nsgan_is_bce_on_probabilities_by_hand():
    adv = AdversarialLoss("nsgan")
    real = -(math.log(0.2) + math.log(0.9) + math.log(0.5) + math.log(0.75)) / 4
    fake = -(math.log(0.8) + math.log(0.1) + math.log(0.5) + math.log(0.25)) / 4
    assert float(adv(PROBS, True, True)) == pytest.approx(real, rel=1e-6)
    assert float(adv(PROBS, False, True)) == pytest.approx(fake, rel=1e-6)
    assert float(adv(PROBS, True, False)) == pytest.approx(real, rel=1e-6)  # the generator's target is "real"
    # torch's BCELoss clamps log at -100: a saturated probability gives 100, not inf.
    assert float(adv(np.array([0.0], np.float32), True, True)) == pytest.approx(100.0)
    assert adv.needs_sigmoid


def test_lsgan_is_mse_on_probabilities_by_hand():
    adv = AdversarialLoss("lsgan")
    real = ((0.2 - 1) ** 2 + (0.9 - 1) ** 2 + (0.5 - 1) ** 2 + (0.75 - 1) ** 2) / 4  # 0.23625
    fake = (0.2**2 + 0.9**2 + 0.5**2 + 0.75**2) / 4  # 0.405625
    assert float(adv(PROBS, True, True)) == pytest.approx(real, rel=1e-6)
    assert float(adv(PROBS, False, True)) == pytest.approx(fake, rel=1e-6)
    assert float(adv(PROBS, True, False)) == pytest.approx(real, rel=1e-6)
    # Custom labels (STTN's target_real_label / target_fake_label).
    adv = AdversarialLoss("lsgan", target_real_label=0.9, target_fake_label=0.1)
    assert float(adv(PROBS, True, True)) == pytest.approx(np.mean((PROBS - 0.9) ** 2), rel=1e-6)


def test_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        AdversarialLoss("wgan")


@pytest.mark.parametrize("kind", ["nsgan", "lsgan"])
def test_sttn_inpaint_trains_with_each_kind(kind):
    from tests.models.sttn_inpaint.test_task import _batch, _experiment, _one_step
    from tests.helpers import one_cpu_strategy
    from tfvr.errors import ConfigError
    from tfvr.models.sttn_inpaint.task import STTNInpaintTask

    exp = _experiment()
    exp.losses.gan_loss = kind
    with pytest.raises(ConfigError, match="use_sigmoid"):
        STTNInpaintTask(exp)  # the authors' D ends in a sigmoid for every kind but hinge
    exp = _experiment(use_sigmoid=True)
    exp.losses.gan_loss = kind
    task = STTNInpaintTask(exp)
    models = task.build_models()
    init = (models["generator"].get_weights(), models["discriminator"].get_weights())
    batch = _batch()
    logs, g, d = _one_step(one_cpu_strategy(), init, batch, exp)
    # The logged D terms are the authors' losses on the sigmoid outputs of the initial D.
    disc = STTNInpaintTask(exp).build_models()["discriminator"]
    disc.set_weights(init[1])
    p_real = disc(tf.constant(batch["frames"]) * 2 - 1, training=True).numpy()
    assert p_real.min() > 0 and p_real.max() < 1
    want = AdversarialLoss(kind)(p_real, True, True).numpy()
    assert logs["loss/dis_real"] == pytest.approx(float(want), rel=1e-3)
    assert all(np.isfinite(v) for v in logs.values())
    assert max(np.abs(a - b).max() for a, b in zip(d, init[1])) > 1e-5
