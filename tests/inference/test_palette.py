"""`tfvr synthesize --palette FILE`: the palette JSON is read by `tfvr.safety.read_json` (one line per problem)."""

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
