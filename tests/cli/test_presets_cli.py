from tfvr.cli import main


def test_presets_lists_every_released_checkpoint(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for needle in ("EDVR_L_x4_SR_REDS_official-9f5f5039.pth", "REDS4 RGB PSNR 31.09", "sttn.pth",
                   "label2city_2048/latest_net_G0.pth", "BasicSR docs/ModelZoo.md"):
        assert needle in out


def test_presets_one_and_absent_file(tmp_path, capsys):
    (tmp_path / "EDVR_M_x4_SR_REDS_official-32075921.pth").write_bytes(b"")
    assert main(["presets", "--family", "edvr", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "absent: EDVR_L_x4_SR_REDS_official-9f5f5039.pth is not here; get it from https://" in out
    assert "absent: EDVR_M_x4_SR_REDS_official-32075921.pth" not in out and "sttn.pth" not in out
    assert main(["presets", "edvr_l_deblur_reds", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert '"hr_in": true' in out and "replicate" in out and "absent in" in out and "34.8" in out


def test_presets_bad_name_is_one_line(capsys):
    assert main(["presets", "edvr_xxl"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown preset 'edvr_xxl'" in err
