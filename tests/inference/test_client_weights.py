"""`--model X.weights.h5` for the label-to-video and inpainting kinds: the sidecar's model is rebuilt, its weights
loaded, and it runs in the family's serving module in-process."""

import json

import cv2
import numpy as np

from tests.helpers import built_vid2vid_generator
from tfvr.cli import main
from tfvr.data import synthetic
from tfvr.inference.client import open_model
from tfvr.inference.synthesize import generate
from tfvr.models.vid2vid.export import Vid2VidModule

GEN = dict(label_nc=synthetic.NUM_CLASSES, ngf=8, n_downsampling=2, n_blocks=1)


def _save(model, path, arch):
    model.save_weights(str(path))
    cfg = path.with_name(path.name.replace(".weights.h5", ".config.json"))
    cfg.write_text(json.dumps({"arch": arch, "class": f"{type(model).__module__}.{type(model).__qualname__}",
                               "config": model.get_config()}, default=str))
    return path


def test_synthesize_from_weights_equals_the_generator(tmp_path):
    gen = built_vid2vid_generator(1, **GEN)
    weights = _save(gen, tmp_path / "v2v.weights.h5", "vid2vid")
    clip = synthetic.generate(2, 3, 16, 24, blur=False)
    folder = tmp_path / "labels"
    folder.mkdir()
    for i, lab in enumerate(clip.labels):
        cv2.imwrite(str(folder / f"{i:05d}.png"), lab.astype(np.uint8))
    out = tmp_path / "out"
    assert main(["synthesize", "--model", str(weights), str(folder), str(out), "--quiet"]) == 0
    got = np.stack([cv2.imread(str(p))[..., ::-1] for p in sorted(out.glob("*.png"))])
    module = Vid2VidModule(gen)

    class Direct:
        n, num_classes, use_instance = 3, synthetic.NUM_CLASSES, False

        def next_frame(self, labels, prev, num_prev, instances=None):
            return module.serve(labels=labels[None], prev_frames=prev[None], num_prev=num_prev)["frame"].numpy()[0]

    want = np.stack(list(generate(Direct(), iter(clip.labels))))
    np.testing.assert_array_equal(got, want)
    client = open_model(weights, "label-to-video")
    assert client.n == 3 and client.num_classes == synthetic.NUM_CLASSES
