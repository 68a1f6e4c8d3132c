import numpy as np
import tensorflow as tf

from tfvr.training import summaries


def test_flow_to_color_wheel():
    # Middlebury coding as flow_vis computes it: angle a = atan2(-v, -u) / pi, wheel index (a + 1) / 2 * 54;
    # zero flow is white, full magnitude is the wheel colour itself.
    flow = np.zeros([1, 2, 3, 2], np.float32)
    flow[0, 0, 1] = [1, 0]    # right
    flow[0, 0, 2] = [-1, 0]   # left
    flow[0, 1, 1] = [0, -1]   # up
    flow[0, 1, 2] = [0, 0.5]  # down, half magnitude
    col = summaries.flow_to_color(flow).numpy()
    assert col.shape == (1, 2, 3, 3)
    np.testing.assert_allclose(col[0, 0, 0], [1, 1, 1])
    wheel = summaries.make_colorwheel() / 255.0
    # left: atan2(-0, 1) = 0 -> fk = (0+1)/2*54 = 27
    np.testing.assert_allclose(col[0, 0, 2], wheel[27], atol=1e-6)
    # right: atan2(-0.0, -1) = -pi -> fk = 0 -> red, the first colour (as NumPy/flow_vis give)
    np.testing.assert_allclose(col[0, 0, 1], wheel[0], atol=1e-6)
    np.testing.assert_allclose(col[0, 0, 1], [1, 0, 0], atol=1e-6)
    # half magnitude: half-way to white
    a = np.arctan2(-0.5, -0.0) / np.pi
    fk = (a + 1) / 2 * 54
    k0 = int(np.floor(fk)); f = fk - k0
    c = (1 - f) * wheel[k0] + f * wheel[(k0 + 1) % 55]
    np.testing.assert_allclose(col[0, 1, 2], 1 - 0.5 * (1 - c), atol=1e-6)
    assert np.all(col >= 0) and np.all(col <= 1)


def test_flow_to_color_uvz_and_graph_mode():
    flow = tf.random.normal([2, 5, 6, 3])
    eager = summaries.flow_to_color(flow, max_flow=3.0)
    graph = tf.function(lambda f: summaries.flow_to_color(f, max_flow=3.0))(flow)
    np.testing.assert_allclose(eager.numpy(), graph.numpy(), atol=1e-6)
    assert eager.shape == (2, 5, 6, 3)


def test_image_strip():
    a = tf.zeros([2, 8, 8, 3])
    b = tf.ones([2, 4, 4, 1])
    c = tf.fill([2, 8, 8, 3], tf.constant(255, tf.uint8))
    strip = summaries.image_strip(a, b, c, gap=2)
    assert strip.shape == (2, 8, 8 * 3 + 2 * 2, 3)
    assert float(tf.reduce_max(strip)) == 1.0 and float(tf.reduce_min(strip)) == 0.0
