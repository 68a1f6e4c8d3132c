"""Files a user hands to `tfvr synthesize` / `tfvr inpaint`: the palette JSON (`tfvr.safety.read_json`), label maps
and mask images (`tfvr.inference.io.read_image`): one line per problem."""

import json

import numpy as np
import pytest

from tfvr.errors import UserError
from tfvr.inference.synthesize import load_palette


def test_palette_file_errors_and_a_good_file(tmp_path):
    path = tmp_path / "palette.json"
    with pytest.raises(UserError, match=r"palette.json: palette file not found$"):
        load_palette(str(path), 2)
    path.write_text("[[0, 0, 0],\n [1, 2")
    with pytest.raises(UserError, match=r"palette.json: not a JSON list of \[R, G, B\] colours \(.* at line 2\)$"):
        load_palette(str(path), 2)
    path.write_text('[[0, 0, 0], [1, 2, "x"]]')
    with pytest.raises(UserError, match=r"palette.json: not a JSON list of \[R, G, B\] colours \(invalid literal"):
        load_palette(str(path), 2)
    path.write_text(json.dumps([[0, 0, 0], [10, 20, 30]]))
    np.testing.assert_array_equal(load_palette(str(path), 2), [[0, 0, 0], [10, 20, 30]])


def test_unreadable_label_and_mask_images_are_one_line(tmp_path):
    """Label maps (`synthesize`) and masks (`inpaint`) are read by `tfvr.inference.io.read_image`."""
    import cv2

    from tfvr.inference.inpaint import MaskSource
    from tfvr.inference.synthesize import iter_label_maps

    folder = tmp_path / "labels"
    folder.mkdir()
    cv2.imwrite(str(folder / "000.png"), np.full((4, 6), 2, np.uint8))
    (folder / "001.png").write_bytes(b"not a png")
    maps = iter_label_maps(folder, "synthetic", 3)
    assert next(maps).tolist() == [[2] * 6] * 4
    with pytest.raises(UserError, match=r"001.png: not a readable image$"):
        next(maps)
    with pytest.raises(UserError, match=r"001.png: not a readable image$"):
        MaskSource(folder / "001.png", 2, 4, 6)
