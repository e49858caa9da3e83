"""The Weights tab's handlers called directly, without a server."""

import pickle

import pytest
import torch

from builder import PRESETS, ResNeXtSpec, build_model
from builder import weights as W
from builder.convert import randomize_
from builder.weights import save_safetensors
from ui import controls
from ui import weights as tab

TINY = ResNeXtSpec.from_dict({"cardinality": 4, "width_per_group": 2, "depths": [1, 1],
                              "image_size": 32})


@pytest.fixture(scope="module")
def model():
    return randomize_(build_model(TINY), 1).eval()


@pytest.fixture(params=[".pth", ".safetensors"])
def checkpoint(request, tmp_path, model):
    path = tmp_path / f"my <b>net{request.param}"
    if request.param == ".pth":
        torch.save(model.state_dict(), path)
    else:
        save_safetensors(model.state_dict(), path)
    return path


def test_upload_infers_the_spec(checkpoint):
    out = tab.upload(str(checkpoint))
    spec = ResNeXtSpec.from_json(out["weights_state"]["spec"])
    assert (spec.cardinality, spec.width_per_group, spec.depths) == (4, 2, (1, 1))
    assert "my &lt;b&gt;net" in out["weights_note"] and "<b>" not in out["weights_note"]
    assert "no preset." in out["weights_note"]
    assert str(tab.OUTPUT_DIR) in out["weights_state"]["path"]  # kept only there


def test_a_preset_is_named(tmp_path):
    spec = PRESETS["resnext50_32x4d"]
    path = tmp_path / "r50.safetensors"
    save_safetensors(build_model(spec, device="meta").to_empty(device="cpu").state_dict(),
                     path)
    out = tab.upload(str(path))
    assert out["weights_state"]["preset"] == "resnext50_32x4d"
    assert "the preset **resnext50_32x4d**" in out["weights_note"]
    applied = tab.apply(out["weights_state"], "resnet50", "resnet50", 0)
    assert set(applied) == set(controls.everything_names())
    assert applied["preset"] == "resnext50_32x4d" and applied["cardinality"] == 32


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_malicious_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"conv1.weight": _Evil(marker)}, handle)
    out = tab.upload(str(path))
    assert set(out) == {"weights_note"}  # nothing else changes
    assert out["weights_note"].startswith("**Not loaded.** evil.pth: refused: the pickle asks "
                                          "for a global")
    assert "\n" not in out["weights_note"]
    assert not marker.exists()


def test_over_the_cap_is_refused(checkpoint, monkeypatch):
    monkeypatch.setattr(W, "MAX_WEIGHTS_BYTES", 100)
    out = tab.upload(str(checkpoint))
    assert set(out) == {"weights_note"}
    assert "bytes is over the cap of 100 bytes" in out["weights_note"]


def test_convert_to_form_a_keeps_the_function(checkpoint, model):
    """Bound 1e-5: the same float32 network summed in another order (C paths, then the sum),
    whose outputs are of order 1."""
    state = tab.upload(str(checkpoint))["weights_state"]
    out = tab.convert(state, "a", "safetensors")
    path = out["weights_download"]["value"]
    assert path.endswith(".safetensors") and str(tab.OUTPUT_DIR) in path
    a = build_model(TINY.replace(form="a")).eval()
    a.load_state_dict(W.read_state_dict(path), strict=True)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (a(x) - model(x)).abs().max().item() < 1e-5


def test_convert_other_formats(checkpoint):
    state = tab.upload(str(checkpoint))["weights_state"]
    assert tab.convert(state, "c", "model.py")["weights_download"]["value"].endswith(".py")
    out = tab.convert(state, "c", "timm")  # two stages: timm's ResNet has four
    assert out["weights_message"].startswith("**Not converted.** timm's ResNet cannot express")
    assert tab.convert({}, "c", "pt2")["weights_message"] == ("**Not converted.** No weights "
                                                             "loaded.")
