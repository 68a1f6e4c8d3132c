"""The Cityscapes-style sequence-folder reader, on a fake copy of NVIDIA/vid2vid's layout."""

import cv2
import numpy as np
import pytest

from tfvr.data import synthetic
from tfvr.data.layouts import cityscapes
from tfvr.errors import UserError


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    return make_fake_cityscapes(tmp_path_factory.mktemp("Cityscapes"))


def make_fake_cityscapes(root):
    """train_A/B/inst with two sequences (6 and 4 frames) and val_A/B without instances; frames are the colour
    pictures of their label maps, so alignment after crops and flips can be checked pixel by pixel."""
    for split, seqs in (("train", {"seq0000": 6, "seq0001": 4}), ("val", {"stuttgart_00": 5})):
        for name, n in seqs.items():
            v = synthetic.generate(len(name) + n, n, 24, 32, blur=False)
            for sub in ("A", "B") + (("inst",) if split == "train" else ()):
                (root / f"{split}_{sub}" / name).mkdir(parents=True)
            for i in range(n):
                stem = f"{name}_000000_{i:06d}"
                cv2.imwrite(str(root / f"{split}_A" / name / f"{stem}_labelIds.png"), v.labels[i].astype(np.uint8))
                colour = synthetic.colorize_labels(v.labels[i])
                cv2.imwrite(str(root / f"{split}_B" / name / f"{stem}_leftImg8bit.png"), colour[..., ::-1])
                if split == "train":
                    cv2.imwrite(str(root / "train_inst" / name / f"{stem}_instanceIds.png"),
                                (v.instances[i] + 24000).astype(np.uint16))
    return root


def test_lists_sequences(fake_root):
    seqs = cityscapes.list_sequences(fake_root, "train")
    assert [s.name for s in seqs] == ["seq0000", "seq0001"]
    assert [len(s.labels) for s in seqs] == [6, 4] and seqs[0].instances is not None
    assert cityscapes.list_sequences(fake_root, "val")[0].instances is None


def test_training_batches_are_aligned_crops(fake_root):
    ds = cityscapes.build_dataset(fake_root, "train", num_frames=4, crop_size=16, batch_size=3, seed=1)
    palette = synthetic.colorize_labels(np.arange(synthetic.NUM_CLASSES)).astype(np.float32) / 255.0
    for batch in ds.take(3):
        assert batch["frames"].shape == (3, 4, 16, 16, 3) and batch["labels"].dtype == "int32"
        np.testing.assert_allclose(batch["frames"].numpy(), palette[batch["labels"].numpy()], atol=1e-6)
        assert batch["instances"].numpy().min() >= 24000  # 16-bit ids survive


def test_eval_windows_and_missing_instances(fake_root):
    ds = cityscapes.build_dataset(fake_root, "val", num_frames=5, training=False)
    batches = list(ds)
    assert len(batches) == 1 and batches[0]["frames"].shape == (1, 5, 24, 32, 3)
    assert batches[0]["instances"].numpy().max() == 0
    f, lab, ins = cityscapes.load_sequence(cityscapes.list_sequences(fake_root, "val")[0], 3)
    assert f.shape == (3, 24, 32, 3) and lab.shape == ins.shape == (3, 24, 32)


def test_layout_errors_name_the_folder(fake_root, tmp_path):
    with pytest.raises(UserError, match="no train_A"):
        cityscapes.list_sequences(tmp_path, "train")
    (tmp_path / "train_A" / "s").mkdir(parents=True)
    (tmp_path / "train_B" / "s").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "train_A" / "s" / "0.png"), np.zeros((4, 4), np.uint8))
    with pytest.raises(UserError, match="1 label maps .* but 0 frames"):
        cityscapes.list_sequences(tmp_path, "train")
    with pytest.raises(UserError, match="no sequence has 9 frames"):
        cityscapes.build_dataset(fake_root, "train", num_frames=9)
