"""python -m builder inspect / convert, and --weights on check and export."""

import json
import os

import pytest
import torch

from builder import PRESETS, build_model, randomize_
from builder.cli import main
from builder.infer import load_into
from builder.weights import read_state_dict, save_safetensors

SPEC = PRESETS["resnext50_32x4d"].replace(cardinality=4, depths=(1, 1, 1, 1), image_size=32)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A training script's checkpoint: nested under state_dict, DataParallel's prefix."""
    torch.manual_seed(0)
    state = randomize_(build_model(SPEC), 0).state_dict()
    path = tmp_path_factory.mktemp("ckpt") / "ckpt.pth"
    torch.save({"epoch": 7, "state_dict": {"module." + k: v for k, v in state.items()}}, path)
    return path, state


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_inspect_json_gives_the_spec_keys_preset_and_assumed(checkpoint, capsys):
    code, out, _ = run(["inspect", "--weights", checkpoint[0], "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert {k: data[k] for k in SPEC.to_dict()} == SPEC.replace(image_size=224).to_dict()
    assert data["preset"] is None
    assert data["assumed"] == ["stride_on", "image_size", "zero_init_residual"]


def test_inspect_names_a_preset_and_prints_what_was_assumed(tmp_path, capsys):
    path = tmp_path / "r50.safetensors"
    state = build_model(PRESETS["resnet50"], device="meta").state_dict()
    save_safetensors({k: torch.zeros(v.shape) for k, v in state.items()}, path)
    code, out, _ = run(["inspect", "--weights", path], capsys)
    assert code == 0
    assert out.splitlines()[0] == f"{path}: ResNet-50, form (c): 320 tensors; the preset resnet50"
    assert "assumed (not told by the weights):" in out
    assert "stride_on: '3x3' assumed" in out


@pytest.mark.parametrize("form", "ab")
def test_convert_writes_the_same_function_in_another_form(form, checkpoint, tmp_path, capsys):
    out_path = tmp_path / f"{form}.safetensors"
    code, out, _ = run(["convert", "--weights", checkpoint[0], "--form", form, "-o", out_path],
                       capsys)
    assert code == 0
    assert out.startswith(f"wrote {out_path} (")
    assert out.rstrip().endswith(f"ResNeXt-14 (4x4d), form ({form}), weights loaded from "
                                 f"{checkpoint[0]}, converted from form (c)")
    converted = read_state_dict(out_path)
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = load_into(SPEC, checkpoint[1])(images)
        got = load_into(SPEC.replace(form=form), converted)(images)
    # float32, one conversion: within builder.convert's relative bound of 1e-4
    assert (got - expected).abs().max().item() <= 1e-4 * expected.abs().max().item()


def test_check_runs_on_loaded_weights(checkpoint, capsys):
    code, out, _ = run(["check", "--weights", checkpoint[0], "--image-size", "32", "--json"],
                       capsys)
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == 8 and all(r["ok"] for r in rows)
    code, out, _ = run(["check", "--weights", checkpoint[0], "--image-size", "32"], capsys)
    assert f"weights loaded from {checkpoint[0]}" in out.splitlines()[0]


@pytest.mark.parametrize("fmt, name", [("safetensors", "w.safetensors"), ("pt2", "m.pt2"),
                                       ("timm", "timm")])
def test_export_says_whether_the_weights_are_loaded_or_random(fmt, name, checkpoint, tmp_path,
                                                              capsys):
    target = tmp_path / name
    code, out, _ = run(["export", "--weights", checkpoint[0], "--format", fmt, "-o", target],
                       capsys)
    assert code == 0
    assert out.rstrip().endswith(f", {fmt}, weights loaded from {checkpoint[0]}")
    code, out, _ = run(["export", "--preset", "resnet18", "--depths", "1,1,1,1", "--format",
                        fmt, "-o", tmp_path / ("r" + name), "--image-size", "32"], capsys)
    assert code == 0
    assert out.rstrip().endswith(f", {fmt}, fresh weights")


def test_weights_into_a_given_spec_that_does_not_fit(checkpoint, capsys):
    code, _, err = run(["check", "--weights", checkpoint[0], "--preset", "resnet50"], capsys)
    assert code == 2
    assert err.startswith("error: --weights: ckpt.pth: they do not fit ResNet-50, form (c): ")
    assert err.count("\n") == 1


@pytest.mark.parametrize("argv, message", [
    (["inspect"], "error: inspect: give --weights FILE\n"),
    (["convert", "--weights", "x.pth"], "error: convert: give --weights FILE, --form (one of "
                                        "a, b, c) and -o OUT.safetensors\n"),
    (["inspect", "--weights", "nowhere.pth"], "error: --weights: nowhere.pth: cannot read it: "
                                              "No such file or directory\n"),
    (["export", "--format", "timm", "--preset", "resnext29_8x64d", "-o", "t"],
     "error: timm's ResNet cannot express ResNeXt-29 (8x64d): the CIFAR stem"),
])
def test_bad_weights_options_exit_2_with_one_line(argv, message, capsys, tmp_path,
                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(argv, capsys)
    assert code == 2
    assert err.startswith(message) and err.count("\n") == 1


def test_an_option_the_weights_tell_is_refused(checkpoint, capsys):
    code, _, err = run(["check", "--weights", checkpoint[0], "-C", "8"], capsys)
    assert code == 2
    assert err == ("error: --cardinality: the weights tell it (4); leave the option out, or "
                   "give --preset or --config to load the weights into a spec of your own\n")


def test_a_malicious_checkpoint_exits_2_and_never_runs(tmp_path, capsys):
    marker = tmp_path / "MARKER"

    class Touch:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pth"
    torch.save({"state_dict": Touch()}, path)
    for command in ("inspect", "check", "convert", "export"):
        argv = [command, "--weights", path] + (
            ["--form", "a", "-o", tmp_path / "o.safetensors"] if command == "convert" else
            ["--format", "safetensors", "-o", tmp_path / "o.safetensors"]
            if command == "export" else [])
        code, _, err = run(argv, capsys)
        assert code == 2
        assert err.startswith("error: --weights: evil.pth: refused: the pickle asks for a "
                              "global")
    assert not marker.exists() and not (tmp_path / "o.safetensors").exists()
