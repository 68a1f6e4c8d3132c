"""A corrupt shard met during training is reported with its file name (TF's DataLossError names no file)."""

import numpy as np
import pytest
import tensorflow as tf

from tfvr.data import records
from tfvr.data.config import DataConfig
from tfvr.errors import RecordError
from tfvr.training.task import Task


class _Exp:
    def __init__(self, source):
        self.data = DataConfig(source=source)


def _write_shards(root, n=2):
    rng = np.random.default_rng(0)
    paths = []
    for k in range(n):
        clip = records.Clip(frames=[rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(3)],
                            source="v.mp4", frame_indices=[0, 1, 2])
        path = root / records.shard_name("train", k, n)
        records.write_records(path, [records.serialize_clip(clip)] * 2)
        paths.append(path)
    return paths


def test_data_loss_error_names_the_corrupt_shard(tmp_path):
    paths = _write_shards(tmp_path)
    raw = bytearray(paths[1].read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # flips a data byte: the framing is intact, the data CRC is not
    paths[1].write_bytes(bytes(raw))
    with pytest.raises(tf.errors.DataLossError):
        for _ in tf.data.TFRecordDataset([str(p) for p in paths]):
            pass
    task = Task.__new__(Task)
    task.config = _Exp(str(tmp_path))
    err = task.data_error(tf.errors.DataLossError(None, None, "corrupted record at 123"))
    assert isinstance(err, RecordError) and paths[1].name in str(err)


def test_data_error_without_a_broken_shard_still_explains(tmp_path):
    _write_shards(tmp_path)
    task = Task.__new__(Task)
    task.config = _Exp(str(tmp_path))
    err = task.data_error(tf.errors.DataLossError(None, None, "corrupted record at 5"))
    assert isinstance(err, RecordError) and "corrupted record at 5" in str(err)
