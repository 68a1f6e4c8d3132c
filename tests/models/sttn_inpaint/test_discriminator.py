import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvr.models.sttn_inpaint import TPatchGANDiscriminator, discriminator_from_authors


def _torch_like_sn_state(rng, channels=8):
    """A Discriminator state dict as torch's spectral_norm stores it (weight_orig, weight_u, weight_v)."""
    widths = [channels, 2 * channels, 4 * channels, 4 * channels, 4 * channels, 4 * channels]
    sd, cin = {}, 3
    for i, (idx, cout) in enumerate(zip((0, 2, 4, 6, 8, 10), widths)):
        w = rng.normal(0, 0.05, size=(cout, cin, 3, 5, 5)).astype(np.float32)
        if i < 5:
            u = rng.normal(size=cout).astype(np.float32)
            u /= np.linalg.norm(u)
            v = rng.normal(size=cin * 75).astype(np.float32)
            v /= np.linalg.norm(v)
            sd.update({f"conv.{idx}.weight_orig": w, f"conv.{idx}.weight_u": u, f"conv.{idx}.weight_v": v})
        else:
            sd.update({f"conv.{idx}.weight": w, f"conv.{idx}.bias": rng.normal(size=cout).astype(np.float32)})
        cin = cout
    return sd


@pytest.mark.parametrize("impl,kind", [("torch", "SpectralNormConv3D"), ("keras", "SpectralNormalization")])
def test_spectral_norm_wraps_the_first_five_convs_without_bias(impl, kind):
    disc = TPatchGANDiscriminator(channels=8, spectral_norm_impl=impl)
    disc.build()
    kinds = [type(c).__name__ for c in disc.convs]
    assert kinds == [kind] * 5 + ["Conv3D"]
    assert [disc.conv_layer(i).use_bias for i in range(6)] == [False] * 5 + [True]
    y = disc(tf.zeros([2, 3, 128, 128, 3]))
    assert y.shape == (1, 6, 2, 2, 32)  # batch folded into time: 2 clips of 3 frames = 6 frames


@pytest.mark.parametrize("impl", ["torch", "keras"])
def test_sn_weights_convert_to_what_torch_evaluates(impl):
    rng = np.random.default_rng(0)
    sd = _torch_like_sn_state(rng)
    disc = discriminator_from_authors(sd, spectral_norm_impl=impl)
    assert disc.use_spectral_norm
    plain_sd = {}
    for idx in (0, 2, 4, 6, 8):
        w, u, v = (sd[f"conv.{idx}.{k}"] for k in ("weight_orig", "weight_u", "weight_v"))
        sigma = u @ (w.reshape(w.shape[0], -1) @ v)
        plain_sd[f"conv.{idx}.weight"] = w / sigma
        plain_sd[f"conv.{idx}.bias"] = np.zeros(w.shape[0], np.float32)
    plain_sd.update({k: v for k, v in sd.items() if k.startswith("conv.10.")})
    plain = discriminator_from_authors(plain_sd)
    x = rng.uniform(-1, 1, size=(4, 64, 64, 3)).astype(np.float32)
    ref = plain(x).numpy()
    # (random u, v give a small sigma, so the outputs are large: compare relative to their scale)
    assert np.abs(disc(x).numpy() - ref).max() <= 1e-5 * max(1.0, np.abs(ref).max())
    if impl == "keras":
        np.testing.assert_allclose(disc.convs[0].vector_u.numpy()[0], sd["conv.0.weight_u"])
    else:  # torch's state as it is: weight_orig, u, v
        np.testing.assert_allclose(disc.convs[0].u.numpy(), sd["conv.0.weight_u"])
        np.testing.assert_allclose(disc.convs[0].v.numpy(), sd["conv.0.weight_v"])
        np.testing.assert_allclose(disc.convs[0].weight_matrix().numpy(), sd["conv.0.weight_orig"].reshape(8, -1))


def test_torch_sn_training_call_iterates_u_v_and_leaves_the_kernel():
    tf.keras.utils.set_random_seed(0)
    disc = TPatchGANDiscriminator(channels=8)
    x = tf.random.uniform([1, 3, 32, 32, 3], -1, 1)
    disc(x)
    conv = disc.convs[1]
    k0, u0 = conv.kernel.numpy().copy(), conv.u.numpy().copy()
    for _ in range(30):
        disc(x, training=True)
    assert not np.allclose(u0, conv.u.numpy())
    np.testing.assert_array_equal(k0, conv.kernel.numpy())  # weight_orig is not overwritten
    w = conv.weight_matrix().numpy().astype(np.float64)
    # one torch power iteration per training call (v = normalize(W^T u), u = normalize(W v)), from the same u:
    # the same 30 steps in float64 (a check of the iteration itself; how close 30 steps come to the top singular
    # pair depends on the random kernel's spectral gap, ~3 % for some seeds)
    u = u0.astype(np.float64)
    for _ in range(30):
        v = w.T @ u
        v /= max(np.linalg.norm(v), 1e-12)
        u = w @ v
        u /= max(np.linalg.norm(u), 1e-12)
    np.testing.assert_allclose(conv.u.numpy(), u, atol=1e-4)
    np.testing.assert_allclose(conv.v.numpy(), v, atol=1e-4)
    sigma = conv.u.numpy() @ w @ conv.v.numpy()
    top = np.linalg.svd(w, compute_uv=False)[0]
    assert sigma <= top * (1 + 1e-5) and sigma / top > 0.9  # approaches the top singular value from below


def test_training_call_runs_the_power_iteration():
    disc = TPatchGANDiscriminator(channels=8, spectral_norm_impl="keras")
    x = tf.random.uniform([1, 3, 32, 32, 3], -1, 1)
    disc(x)
    u0 = disc.convs[0].vector_u.numpy().copy()
    for _ in range(30):
        disc(x, training=True)
    assert not np.allclose(u0, disc.convs[0].vector_u.numpy())
    # After the iterations the stored kernel has spectral norm ~1 (Keras SN normalises the kernel in place).
    k = disc.conv_layer(1).kernel.numpy()
    assert abs(np.linalg.svd(k.reshape(-1, k.shape[-1]), compute_uv=False)[0] - 1.0) < 0.05


def test_serialises():
    disc = TPatchGANDiscriminator(channels=8, use_spectral_norm=False)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(disc))
    assert again.get_config() == disc.get_config()


def test_unfolded_batch_is_clip_by_clip():
    disc = TPatchGANDiscriminator(channels=8, use_spectral_norm=False, fold_batch_into_time=False)
    x = tf.random.uniform([2, 3, 64, 64, 3], -1, 1)
    both = disc(x).numpy()
    np.testing.assert_allclose(both[1], disc(x[1]).numpy()[0], atol=1e-5)
    folded = TPatchGANDiscriminator(channels=8, use_spectral_norm=False)
    folded.build()
    folded.set_weights(disc.get_weights())
    f = folded(x).numpy()
    assert f.shape[:2] == (1, 6)
    # Folded, the temporal kernels (receptive field 13 frames) reach across into the neighbouring clip.
    assert np.abs(f[0, :3] - both[0]).max() > 1e-5


@pytest.mark.parametrize("impl", ["torch", "keras"])
def test_cpu_training_step_has_no_conv3d_op(impl):
    """On CPU every T-PatchGAN conv is a sum of 2-D convs (`tfvr.ops.conv3d`), forward and backward: TF's CPU
    Conv3D backward is 10-24x slower at the discriminator's sizes (bench/conv3d.py)."""
    disc = TPatchGANDiscriminator(channels=4, spectral_norm_impl=impl)
    disc.build()

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(disc(x, training=True))
        return tape.gradient(loss, disc.trainable_variables)

    graph = step.get_concrete_function(tf.TensorSpec([1, 3, 64, 64, 3], tf.float32)).graph
    ops = {op.type for op in graph.get_operations()}
    for fn in graph._functions.values():  # noqa: SLF001 — the gradient's and the layers' nested functions
        ops |= {op.type for op in fn.graph.get_operations()} if hasattr(fn, "graph") else set()
    assert "Conv2D" in ops or any("Conv2D" in o for o in ops), sorted(ops)
    assert not any(o.startswith("Conv3D") for o in ops), sorted(o for o in ops if "Conv" in o)
