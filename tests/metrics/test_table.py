import json
import math

from tfvr.metrics.table import ClipScores, average, format_table, to_json


def test_clip_summary_centre_border_and_average():
    a = ClipScores("a")
    for i, (p, border) in enumerate([(20, True), (30, False), (32, False), (22, True)]):
        a.add(i, p, p / 40, border=border)
    s = a.summary()
    assert s["psnr_avg"] == 26 and s["psnr_center"] == 31 and s["psnr_border"] == 21 and s["frames"] == 4
    b = ClipScores("b")
    b.add(0, 40, 1.0)
    assert math.isnan(b.summary()["psnr_border"])
    avg = average([a, b])
    assert avg["psnr_avg"] == 33 and avg["psnr_border"] == 21
    text = format_table([a, b])
    assert "average" in text and "31.0000" in text and text.count("\n") == 5
    json.dumps(to_json([a, b]))  # NaN-free, serialisable
    assert to_json([a, b])["clips"]["b"]["psnr_border"] is None
