"""The clip Example schema, the sharded writer and the shard checks."""

import numpy as np
import pytest
import tensorflow as tf

from tfvr.data import records
from tfvr.errors import RecordError


def _clip(seed=0, t=3, h=12, w=16, lq=None, labels=False):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8)
    kw = {}
    if lq == "lr":
        kw.update(lq=rng.integers(0, 256, (t, h // 4, w // 4, 3), dtype=np.uint8), lq_kind="lr")
    elif lq == "blur":
        kw.update(lq=rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8), lq_kind="blur")
    if labels:
        kw.update(labels=rng.integers(0, 7, (t, h, w)), instances=rng.integers(0, 300, (t, h, w)))
    return records.Clip(frames=frames, source="dir/v.mp4", frame_indices=[4, 7, 10][:t], scene=2, clip=1,
                        fps=30.0, **kw)


def test_png_roundtrip_rgb_and_16bit():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    np.testing.assert_array_equal(records.decode_png(records.encode_png(img)), img)
    lab = rng.integers(0, 65536, (9, 11))
    np.testing.assert_array_equal(records.decode_png(records.encode_png(lab), label=True), lab)
    assert records.png_rgb8_size(records.encode_png(img)) == (9, 11)
    assert records.png_rgb8_size(records.encode_png(lab)) is None


@pytest.mark.parametrize("lq", [None, "lr", "blur"])
def test_serialize_roundtrip(lq):
    clip = _clip(lq=lq, labels=True)
    out = records.example_to_numpy(records.serialize_clip(clip))
    np.testing.assert_array_equal(out["frames"], clip.frames)
    np.testing.assert_array_equal(out["labels"], clip.labels)
    np.testing.assert_array_equal(out["instances"], clip.instances)
    assert out["source"] == "dir/v.mp4" and out["scene"] == 2 and out["clip"] == 1
    assert list(out["frame_indices"]) == [4, 7, 10]
    if lq:
        np.testing.assert_array_equal(out["lq"], clip.lq)
        assert out["lq_kind"] == lq
    else:
        assert "lq" not in out


def test_graph_parse_matches_python():
    clip = _clip(lq="lr", labels=True)
    ser = records.serialize_clip(clip)

    def parse(s):
        ex = records.parse_example(s)
        return {
            "frames": records.decode_frames(ex["frames"], ex["height"], ex["width"]),
            "lq": records.decode_frames(ex["lq"], ex["lq_height"], ex["lq_width"]),
            "labels": records.decode_frames(ex["labels"], channels=1, dtype=tf.uint16),
            "idx": ex["frame_indices"],
        }

    eager = parse(tf.constant(ser))
    mapped = next(iter(tf.data.Dataset.from_tensors(ser).map(parse)))
    for got in (eager, mapped):
        np.testing.assert_array_equal(got["frames"].numpy(), clip.frames)
        np.testing.assert_array_equal(got["lq"].numpy(), clip.lq)
        np.testing.assert_array_equal(got["labels"].numpy()[..., 0], clip.labels)
        assert list(got["idx"].numpy()) == [4, 7, 10]
    # Absent optional features parse as empty lists.
    ex = records.parse_example(tf.constant(records.serialize_clip(_clip())))
    assert ex["lq"].shape[0] == 0 and ex["labels"].shape[0] == 0


def test_shard_writer_round_robin_and_atomic(tmp_path):
    with records.ShardWriter(tmp_path, "train", 3) as w:
        for k in range(7):
            w.write(records.serialize_clip(_clip(seed=k)))
        assert not list(tmp_path.glob("*.tfrecord"))  # only temporary names while writing
    assert w.counts == [3, 2, 2]
    paths = records.list_shards(tmp_path, "train")
    assert [p.rsplit("/", 1)[1] for p in paths] == [f"train-0000{k}-of-00003.tfrecord" for k in range(3)]
    assert sum(records.verify_shard(p, deep=True) for p in paths) == 7
    assert len(records.read_clips(paths[0])) == 3
    assert not list(tmp_path.glob(".*"))


def test_shard_writer_abort_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with records.ShardWriter(tmp_path, "val", 2) as w:
            w.write(records.serialize_clip(_clip()))
            raise RuntimeError("boom")
    assert not list(tmp_path.iterdir())


def test_list_shards_errors(tmp_path):
    with pytest.raises(RecordError, match="no train-"):
        records.list_shards(tmp_path, "train")
    (tmp_path / "train-00000-of-00002.tfrecord").write_bytes(b"")
    with pytest.raises(RecordError, match="incomplete.*train-00001-of-00002"):
        records.list_shards(tmp_path, "train")
    with pytest.raises(RecordError, match="no such directory"):
        records.list_shards(tmp_path / "nope", "train")


def test_truncated_shard_names_the_file(tmp_path):
    path = tmp_path / "train-00000-of-00001.tfrecord"
    records.write_records(path, [records.serialize_clip(_clip(seed=k)) for k in range(3)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(RecordError, match=r"train-00000-of-00001\.tfrecord: truncated"):
        records.verify_shard(path)
    with pytest.raises(RecordError, match=r"train-00000-of-00001\.tfrecord"):
        records.read_clips(path)


def test_garbage_shard_names_the_file(tmp_path):
    path = tmp_path / "train-00000-of-00001.tfrecord"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(RecordError, match=r"train-00000-of-00001\.tfrecord: corrupt or not a TFRecord"):
        records.verify_shard(path)


def test_valid_framing_but_not_a_clip(tmp_path):
    path = tmp_path / "train-00000-of-00001.tfrecord"
    records.write_records(path, [b"hello"])
    with pytest.raises(RecordError, match="not a tf.train.Example|not a tfvr clip"):
        records.verify_shard(path)


def test_corrupt_data_found_by_deep_check(tmp_path):
    path = tmp_path / "x-00000-of-00001.tfrecord"
    records.write_records(path, [records.serialize_clip(_clip())])
    data = bytearray(path.read_bytes())
    data[200] ^= 0xFF  # inside the payload: framing still fine
    path.write_bytes(bytes(data))
    records.verify_shard(path)
    with pytest.raises(RecordError, match=r"x-00000-of-00001\.tfrecord: corrupt"):
        records.verify_shard(path, deep=True)


def test_crc32c_known_value():
    assert records.crc32c(b"123456789") == 0xE3069283


@pytest.mark.parametrize("lq", [None, "lr"])
def test_pure_python_example_is_what_tensorflow_writes(lq):
    # serialize_clip builds the protobuf bytes itself (no TensorFlow in a Beam worker): parsing them and writing
    # them again with TensorFlow's deterministic serialiser must give the same bytes
    ser = records.serialize_clip(_clip(lq=lq, labels=lq is not None))
    assert tf.train.Example.FromString(ser).SerializeToString(deterministic=True) == ser
    odd = {"z": ("int64", [-1, 0, 2**40]), "a": ("float", []), "m": ("bytes", []), "é": ("float", [0.1, -3.5]),
           "b": ("bytes", [b"", b"x" * 300]), "lq_kind": ("bytes", [b"lr"]), "lq": ("bytes", []),
           "a_": ("int64", [])}
    ser = records._serialize_example(odd)
    ex = tf.train.Example.FromString(ser)
    assert list(ex.features.feature["z"].int64_list.value) == [-1, 0, 2**40]
    assert ex.features.feature["a"].WhichOneof("kind") == "float_list"
    assert ex.SerializeToString(deterministic=True) == ser


def test_crc32c_and_framing_match_tensorflow(tmp_path):
    rng = np.random.default_rng(1)
    for n in (0, 5, 255, 256, 257, 4096, 4097, 100_003):  # the table loop below 256 bytes, numpy lanes above
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert records.crc32c(data) == records._crc_raw(0xFFFFFFFF, data) ^ 0xFFFFFFFF, n
    recs = [b"", rng.integers(0, 256, 3000, dtype=np.uint8).tobytes(), b"abc"]
    path = tmp_path / "t.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as w:
        for r in recs:
            w.write(r)
    assert path.read_bytes() == b"".join(h + r + f for r in recs for h, f in [records.frame_record(r)])
