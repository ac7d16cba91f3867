"""Issue 18's smaller items through the CLI's main: a clear message naming the value and the
fix, a non-zero exit where something failed, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, SEED_SCRIPT

from studio.cli.commands import main

QUICKSTART = ROOT / "example_data" / "quickstart.yaml"


def _run(capsys, *argv) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse and _load_config leave through SystemExit
        code = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_a_binary_config_is_named_not_a_traceback(tmp_path, capsys):
    binary = tmp_path / "model.safetensors"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00binary")
    for command in ("check", "command", "estimate", "train"):
        code, _, err = _run(capsys, command, str(binary))
        assert code == 2, command
        assert str(binary) in err and "not a text config" in err and "Fix:" in err


def test_unknown_runs_are_named_with_the_fix(tmp_path, capsys):
    for command in ("stop", "resume"):
        code, _, err = _run(capsys, command, "nosuchrun", "--runs-dir", str(tmp_path))
        assert code == 2, command
        assert "no run 'nosuchrun'" in err and str(tmp_path) in err
        assert "python -m studio runs" in err


@pytest.mark.parametrize("size", ["nan", "inf", "-8", "0"])
def test_estimate_refuses_a_device_size_that_is_not_one(size, capsys):
    code, _, err = _run(capsys, "estimate", str(QUICKSTART), "--device-gib", size)
    assert code == 2
    assert f"--device-gib {float(size):g} is not a device size" in err and "Fix:" in err


def test_an_import_with_errors_exits_non_zero(tmp_path, capsys):
    out = tmp_path / "seed.yaml"
    code, printed, err = _run(capsys, "import-script", str(SEED_SCRIPT), "--out", str(out))
    assert "error(s)" in printed and not printed.count("0 error(s)")
    assert code == 1 and out.is_file()  # written so it can be fixed, but not a success
    assert "Fix them there" in err
    binary = tmp_path / "script.sh"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    code, _, err = _run(capsys, "import-script", str(binary), "--out", str(tmp_path / "b.yaml"))
    assert code == 2 and "not a text (UTF-8) file" in err


@pytest.mark.parametrize("option", ["--nnodes", "--nproc-per-node", "--nodes"])
def test_export_refuses_zero_nodes_or_processes(tmp_path, capsys, option):
    code, _, err = _run(
        capsys,
        "export",
        str(QUICKSTART),
        "--target",
        "nodes",
        "--out",
        str(tmp_path / "out"),
        "--head",
        "10.0.0.1",
        option,
        "0",
    )
    assert code == 2
    assert f"argument {option}: '0' is not a whole number of at least 1" in err
    assert not (tmp_path / "out").exists()


def test_export_nodes_core_keeps_zero_as_a_value(tmp_path):
    """The core (the web UI's path too) refuses 0 nodes instead of reading it as "unset"."""
    from studio.cluster.export import export
    from studio.core import config

    result = export(
        config.load(QUICKSTART), "nodes", tmp_path / "out", ROOT, nnodes=0, head="10.0.0.1"
    )
    assert not result.ok and [p.code for p in result.problems] == ["nodes_count"]


def test_merge_checks_its_destinations_before_any_work(tmp_path, capsys, monkeypatch):
    from studio.evaluation import merge

    def no_sweep(*args, **kwargs):
        raise AssertionError("the sweep started")

    monkeypatch.setattr(merge, "sweep", no_sweep)
    taken = tmp_path / "taken"
    taken.mkdir()
    argv = ["merge", "--base", "bundled:all-MiniLM-L6-v2", "--model", str(tmp_path / "m")]
    argv += ["--data", str(ROOT / "example_data" / "eval"), "--weights", "0,0.5,1"]
    cases = [
        (["--export", str(taken)], f"--export {taken} exists"),
        (["--export", str(tmp_path / "new"), "--pick", "0.3"], "--pick 0.3 is not one of"),
        (["--pick", "0.5"], "no --export is given"),
        (["--json", str(taken)], f"--json {taken} is a folder"),
    ]
    for extra, words in cases:
        code, _, err = _run(capsys, *argv, *extra)
        assert code == 2, extra
        assert words in err and "Fix:" in err, (extra, err)


def test_a_secret_in_the_users_deepspeed_json_never_reaches_a_file(tmp_path, capsys):
    token = "hf_" + "a1B2c3D4e5F6g7H8i9J0k1L2"
    ds = {
        "zero_optimization": {"stage": 0},
        "train_micro_batch_size_per_gpu": "auto",
        "comet": {"enabled": True, "api_key": "comet-secret-value", "project": "p"},
        "wandb": {"enabled": True, "project": token},
    }
    ds_file = tmp_path / "ds.json"
    ds_file.write_text(json.dumps(ds))
    cfg = QUICKSTART.read_text().replace("deepspeed:\n  stage: 0", f"deepspeed: {ds_file}")
    assert str(ds_file) in cfg
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(cfg)

    code, printed, _ = _run(capsys, "check", str(cfg_file), "--base-dir", str(ROOT))
    assert code == 1
    assert "`comet.api_key`" in printed and "`wandb.project`" in printed
    assert "set it in the environment" in printed and token not in printed

    runs_dir = tmp_path / "runs"
    code, _, err = _run(
        capsys, "train", str(cfg_file), "--base-dir", str(ROOT), "--runs-dir", str(runs_dir)
    )
    assert code == 1 and "comet.api_key" in err
    assert not runs_dir.exists() or not any(runs_dir.iterdir())

    out = tmp_path / "script"
    code, _, err = _run(
        capsys, "command", str(cfg_file), "--base-dir", str(ROOT), "--out", str(out)
    )
    written = (out / "ds_config.json").read_text()
    assert "comet-secret-value" not in written and token not in written
    assert json.loads(written)["comet"]["api_key"] == "***"
    assert json.loads(written)["comet"]["enabled"] is True  # the rest is kept as it was
    assert "looks like a secret" in err
    assert not [p for p in Path(out).rglob("*") if token in p.read_text()]
