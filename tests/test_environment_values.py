"""Every command turns a bad environment value into one line that names it."""
from pathlib import Path

import pytest
from click.testing import CliRunner

from faceattr.cli import main

PHOTO = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


# ---- every command handles a bad environment ------------------------------------------------
COMMAND_ARGS = {
    "train": ["--root", "{celeba}", "--out", "{tmp}/run", "--epochs", "1", "--max-images", "16"],
    "predict": [str(PHOTO)],
    "extract": [str(PHOTO), "--out", "{tmp}/f.parquet"],
    "serve": ["--port", "1"],
    "benchmark celeba": ["--root", "{celeba}", "--max-images", "16", "--out", "{tmp}/bench"],
    "cache": [],
    "reconstruct": [str(PHOTO), "--out", "{tmp}/r.png"],
    "sample": ["--out", "{tmp}/s.png"],
    "interpolate": [str(PHOTO), str(PHOTO), "--out", "{tmp}/i.png"],
    "manipulate": [str(PHOTO), "--attribute", "Smiling", "--out", "{tmp}/m.png"],
    "attribute-vectors": ["--root", "{celeba}", "--out", "{tmp}/v.npz", "--max-images", "16"],
    "tsne": ["--root", "{celeba}", "--out", "{tmp}/t.png", "-n", "16"],
    "heads fit": ["--root", "{celeba}", "--out", "{tmp}/b", "--max-images", "16"],
    "export onnx": ["{tmp}/onnx"],
}
BAD_ENV = {"FACEATTR_CACHE_MAX_GB": "abc", "FACEATTR_PRETRAINED": "/nonexistent/faceattr-weights"}


def _all_commands(group, prefix=""):
    import click
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _all_commands(cmd, f"{prefix}{name} ")
        else:
            yield prefix + name


def test_the_table_of_commands_covers_every_command():
    assert sorted(_all_commands(main)) == sorted(COMMAND_ARGS)


@pytest.mark.parametrize("command", sorted(COMMAND_ARGS))
def test_every_command_gives_a_one_line_error_for_a_bad_environment(command, tmp_path, celeba_root, monkeypatch):
    for k, v in BAD_ENV.items():
        monkeypatch.setenv(k, v)
    args = [a.format(tmp=tmp_path, celeba=celeba_root) for a in COMMAND_ARGS[command]]
    r = CliRunner().invoke(main, command.split() + args)
    assert r.exit_code == 1, (command, r.output, r.exception)
    assert isinstance(r.exception, SystemExit), (command, r.exc_info)
    assert "Traceback" not in r.output
    error = [line for line in r.output.splitlines() if line.startswith("Error: ")]
    assert error and ("FACEATTR_CACHE_MAX_GB" in error[0] or "/nonexistent/faceattr-weights" in error[0]), r.output


def test_cache_names_the_bad_value(monkeypatch):
    monkeypatch.setenv("FACEATTR_CACHE_MAX_GB", "abc")
    r = CliRunner().invoke(main, ["cache"])
    assert r.exit_code == 1 and r.output.strip() == (
        "Error: FACEATTR_CACHE_MAX_GB must be a number of gigabytes (0 or more), got 'abc'")


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_cache_size_must_be_finite_and_not_negative(value, monkeypatch):
    from faceattr import cache
    monkeypatch.setenv("FACEATTR_CACHE_MAX_GB", value)
    with pytest.raises(ValueError, match="FACEATTR_CACHE_MAX_GB"):
        cache.max_bytes()
