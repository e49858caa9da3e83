"""app.py through its API: every endpoint, called with gradio_client against the app launched
as `python app.py --port N` in a subprocess (one per module)."""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from builder import PRESETS, ResNeXtSpec, count_macs, count_params

ROOT = Path(__file__).resolve().parent.parent
R50 = PRESETS["resnext50_32x4d"]
SMALL = PRESETS["resnext29_8x64d"].replace(depths=(1, 1, 1), image_size=32)
# what clients and the README rely on; the page may add endpoints, never drop one of these
PUBLISHED = {"/analyze", "/preset", "/add_stage", "/remove_stage", "/upload_config",
             "/restore", "/block_graph", "/network_graph", "/summary", "/code", "/block_png",
             "/network_png", "/onnx", "/build", "/time", "/time_confirmed", "/equivalence",
             "/equivalence_confirmed", "/pin", "/sweep", "/clear_pins", "/restore_pins",
             "/compare", "/learn", "/learn_follow", "/overview", "/learn_step"}
TINY = ResNeXtSpec(cardinality=2, width_per_group=4, depths=(1,), stem="cifar", num_classes=10,
                   image_size=16)
NO_CHANGE = {"__type__": "update"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(port: int, timeout: float = 180.0, argv: list[str] | None = None,
           env: dict | None = None, output=None) -> subprocess.Popen:
    """`python app.py --port PORT` (or `argv`, with `env`), returned once the page answers. Its
    output goes to `output` or a temporary file (a pipe nobody reads would block it once
    full). benchmarks/load_app.py launches its instrumented app through this too."""
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"} if env is None else env
    log = tempfile.TemporaryFile() if output is None else output
    argv = [sys.executable, "app.py", "--port", str(port)] if argv is None else argv
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"the app exited ({process.returncode}): "
                               f"{log.read().decode(errors='replace')[-4000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as answer:
                if answer.status == 200:
                    return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    process.wait()
    log.seek(0)
    raise RuntimeError(f"the app did not answer within {timeout:.0f} s: "
                       f"{log.read().decode(errors='replace')[-4000:]}")


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


def controls(spec, preset="resnext50_32x4d", keep=False, baseline="auto", stage=0):
    """The positional inputs of /analyze, /add_stage and /remove_stage."""
    return [preset, spec.cardinality, spec.width_per_group,
            ", ".join(str(d) for d in spec.depths), spec.form, spec.block, spec.stem,
            spec.stride_on, spec.image_size, spec.num_classes, spec.in_channels,
            spec.stem_width, spec.zero_init_residual, keep, baseline, stage]


# outputs of /analyze, in order; /preset, /restore, /upload_config go on with the controls
ANALYTICS = ["error", "headline", "stage", "spec_json", "share_query", "width"]
EVERYTHING = ANALYTICS + ["preset", "keep", "cardinality", "depths", "form", "block", "stem",
                          "stride_on", "image_size", "num_classes", "in_channels",
                          "stem_width", "zero_init"]


def named(values, names=ANALYTICS) -> dict:
    assert len(values) == len(names)
    return dict(zip(names, values, strict=True))


def value(output):
    return output["value"] if isinstance(output, dict) and "__type__" in output else output


def test_every_event_is_an_endpoint(client, app_url):
    from ui.page import endpoints  # each module of the page declares its api_names

    assert set(client.view_api(return_format="dict")["named_endpoints"]) == endpoints()
    assert PUBLISHED <= endpoints()
    with urllib.request.urlopen(app_url + "config") as answer:
        config = json.load(answer)
    backend = [d for d in config["dependencies"] if d.get("backend_fn")]
    assert backend and all(d["api_name"] for d in backend)


def test_analyze_gives_the_numbers_and_the_link(client):
    spec = R50.replace(cardinality=64)
    out = named(client.predict(*controls(spec), api_name="/analyze"))
    assert out["error"] == {"__type__": "update", "visible": False, "value": ""}
    assert out["headline"] == (
        f"**ResNeXt-50 (64x4d)**, form (c) · **{count_params(spec):,}** parameters · "
        f"**{count_macs(spec) / 1e9:.2f} G** multiply-adds · "
        f"**{2 * count_macs(spec) / 1e9:.2f} G** FLOPs (= 2 × "
        f"{count_macs(spec) / 1e9:.2f} G multiply-adds; the paper counts one multiply-add as "
        "one FLOP: 8.0\u00a0×\u00a010⁹ in its Table 1's terms) at 224×224")
    assert count_params(spec) == 45_192_488
    assert json.loads(out["spec_json"]) == spec.to_dict()
    assert out["share_query"] == "?preset=resnext50_32x4d&C=64"
    assert value(out["width"]) == 4


def test_overview_against_the_baseline(client):
    spec = R50.replace(cardinality=64)
    overview, stages, formula = client.predict(spec.to_json(), "resnet50", api_name="/overview")
    assert overview.startswith("### ResNeXt-50 (64x4d), form (c)")
    assert "| parameters | 45,192,488 | 25,557,032 | +19,635,456 (+76.83%) |" in overview
    assert "| FLOPs = 2 × multiply-adds | 15.96 G | 8.18 G |" in overview
    assert stages["data"][-1][7] == "45,192,488"
    assert "| conv2, later blocks | `64 × (256×4 + 9×4² + 4×256) = 64 × 2,192` | 140,288 " \
           "| 69,632 |" in formula
    overview, _, _ = client.predict(spec.to_json(), "resnext101_64x4d", api_name="/overview")
    assert "| parameters | 45,192,488 | 83,455,272 | −38,262,784 (−45.85%) |" in overview


def test_keep_complexity_solves_d(client):
    spec = R50.replace(cardinality=8)
    out = named(client.predict(*controls(spec, keep=True), api_name="/analyze"))
    assert out["width"] == {"__type__": "update", "value": 14, "interactive": False}
    assert json.loads(out["spec_json"])["width_per_group"] == 14
    assert out["headline"].startswith("**ResNeXt-50 (8x14d)**")
    assert out["share_query"] == "?preset=resnext50_32x4d&C=8&d=14"


@pytest.mark.parametrize("change, message", [
    # in the page's words (issue 13): the control's label, the value as typed
    ({"cardinality": 0}, "Cardinality C: 0 is not allowed; expected a whole number from 1 to "
                         "4096"),
    ({"cardinality": 2.5}, "Cardinality C: 2.5 is not allowed; expected a whole number"),
    ({"depths": "3, 4, x"}, "Blocks per stage: “3, 4, x” is not allowed; expected whole "
                            "numbers separated by commas, e.g. 3, 4, 6, 3"),
    ({"block": "basic", "stride_on": "1x1"}, "Stride of a downsampling bottleneck: “1x1” — a "
                                             "basic block has no 1x1 conv"),
])
def test_invalid_input_shows_the_message_and_changes_nothing_else(client, change, message):
    args = controls(R50)
    names = ["preset", "cardinality", "width_per_group", "depths", "form", "block", "stem",
             "stride_on"]
    for key, new in change.items():
        args[names.index(key)] = new
    out = named(client.predict(*args, api_name="/analyze"))
    assert out["error"]["visible"] is True
    assert out["error"]["value"].startswith(f"**Not applied.** {message}")
    assert all(out[name] == NO_CHANGE for name in ANALYTICS[1:])


def test_preset_fills_every_control(client):
    out = named(client.predict("resnext29_8x64d", "auto", 2, api_name="/preset"),
                EVERYTHING)
    assert (value(out["cardinality"]), value(out["width"]), out["depths"], out["stem"],
            out["num_classes"], out["image_size"]) == (8, 64, "3, 3, 3", "cifar", 10, 32)
    assert out["headline"].startswith("**ResNeXt-29 (8x64d)**, form (c) · **34,426,698** "
                                      "parameters")
    assert out["stage"]["value"] == 2
    assert out["share_query"] == "?preset=resnext29_8x64d&stage=2"


def test_add_and_remove_stage(client):
    out = named(client.predict(*controls(R50), api_name="/add_stage"), ANALYTICS + ["depths"])
    assert out["depths"] == "3, 4, 6, 3, 3"
    assert [c[0] for c in out["stage"]["choices"]][-1] == "conv6 (layer5)"
    _, stages, _ = client.predict(out["spec_json"], "resnet50", api_name="/overview")
    assert stages["data"][5][:6] == ["conv6 (layer5)", "3", "2048", "2048", "64", "4096"]
    out = named(client.predict(*controls(R50, stage=3), api_name="/remove_stage"),
                ANALYTICS + ["depths"])
    assert out["depths"] == "3, 4, 6"
    assert out["stage"]["value"] == 2  # the stage shown was removed: the last one is shown
    one = R50.replace(depths=(3,))
    out = named(client.predict(*controls(one), api_name="/remove_stage"),
                ANALYTICS + ["depths"])
    assert out["error"]["value"] == (
        "**Not applied.** Blocks per stage: 3 — cannot remove the only stage: a network needs "
        'at least one<span class="bad-field bad-depths"></span>')
    assert out["depths"] == NO_CHANGE


def test_restore_from_a_link(client):
    restored = EVERYTHING + ["baseline"]
    out = named(client.predict("?preset=resnet18&C=2&form=a&stage=1", "resnet50",
                               api_name="/restore"), restored)
    assert (out["preset"], value(out["cardinality"]), out["form"], out["block"],
            out["stage"]["value"], out["baseline"]) == ("resnet18", 2, "a", "basic", 1,
                                                         "auto")
    assert out["share_query"] == "?preset=resnet18&C=2&form=a&stage=1"
    assert out["error"]["visible"] is False
    out = named(client.predict("?preset=resnext50_32x4d&baseline=resnet101", "resnet50",
                               api_name="/restore"), restored)
    assert out["baseline"] == "resnet101"
    assert out["share_query"] == "?preset=resnext50_32x4d&baseline=resnet101"
    out = named(client.predict("?preset=resnet18&form=z", "resnet50", api_name="/restore"),
                restored)
    assert out["error"]["value"] == ("**The link was not applied.** Block form: “z” is not "
                                     "allowed; expected one of 'a', 'b', 'c'"
                                     '<span class="bad-field bad-form"></span>')
    assert out["preset"] == "resnext50_32x4d" and value(out["cardinality"]) == 32


def test_upload_config(client, tmp_path):
    from gradio_client import handle_file

    good = tmp_path / "config.json"
    good.write_text(json.dumps({"preset": "resnext29_8x64d", "form": "b", "depths": [2, 2]}))
    out = named(client.predict(handle_file(str(good)), "resnet50", "auto", 0,
                               api_name="/upload_config"), EVERYTHING)
    assert (out["form"], out["depths"], value(out["cardinality"])) == ("b", "2, 2", 8)
    assert out["share_query"] == "?preset=resnet50&C=8&depths=2,2&form=b&stem=cifar" \
                                 "&classes=10&size=32"
    bad = tmp_path / "bad.json"
    bad.write_text('{"cardinality": "32"}')
    out = named(client.predict(handle_file(str(bad)), "resnet50", "auto", 0,
                               api_name="/upload_config"), EVERYTHING)
    assert out["error"]["value"] == ("**Config not applied.** Cardinality C: “32” is not "
                                     "allowed; expected a whole number from 1 to 4096"
                                     '<span class="bad-field bad-cardinality"></span>')
    big = tmp_path / "big.json"
    big.write_text('{"form": "a"' + " " * 70_000 + "}")
    out = named(client.predict(handle_file(str(big)), "resnet50", "auto", 0,
                               api_name="/upload_config"), EVERYTHING)
    assert "expected at most 65536 characters of JSON" in out["error"]["value"]


def test_block_graph_follows_form_and_stage(client):
    svg_html, svg_path, dot_path, picker = client.predict(R50.to_json(), 1, False, 0,
                                                          api_name="/block_graph")
    assert picker["value"] == 0
    assert svg_html.startswith('<figure class="graph-view') and "<?xml" not in svg_html
    assert ">groups=32 (32 × 8 channels), stride 2<" in svg_html
    assert '<g id="conv2" class="node gconv3x3">' in svg_html
    assert ">ResNeXt&#45;50 (32x4d): conv3 (layer2), block 1 of 4, form (c)<" in svg_html
    svg = Path(svg_path).read_text()
    assert Path(svg_path).suffix == ".svg" and ">groups=32 (32 × 8 channels), stride 2<" in svg
    assert Path(dot_path).read_text().startswith("digraph block_layer2_0_c {")
    svg_html, _, _, picker = client.predict(R50.replace(form="a", cardinality=64).to_json(),
                                            0, api_name="/block_stage")
    assert picker["value"] == 1  # a new stage: its later block
    assert '<g id="path0_conv1"' in svg_html and ">61 more identical paths<" in svg_html


def test_block_graph_takes_every_stage_of_an_eight_stage_spec(client):
    """The stage radio is created with a preset's four stages; the API still takes stage 4 to
    7 of a spec that has them (issue 13: "not in the list of choices: [0, 1, 2, 3]")."""
    spec = TINY.replace(depths=(1,) * 8, image_size=64)
    for stage in (4, 7):
        svg_html, *_ = client.predict(spec.to_json(), stage, False, 0, api_name="/block_graph")
        assert f": conv{stage + 2} (layer{stage + 1}), block 1 of 1, form (c)<" in svg_html


def test_a_value_outside_a_choice_is_refused_in_one_short_line(client):
    """Gradio's own refusal echoes the value whole (a megabyte, if sent); ours names the
    control, shows at most 60 characters of the value and lists the choices."""
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as caught:
        client.predict(TINY.to_json(), "x" * 2**20, False, 0, api_name="/block_graph")
    message = str(caught.value)
    assert message == ("Stage shown: '" + "x" * 56 + "... is not allowed; expected one of 0, 1, "
                       "2, 3, 4, 5, 6, 7")
    with pytest.raises(AppError, match=r"^Depth: 9 is not allowed; expected one of 1, 2, 3, 4$"):
        client.predict(TINY.to_json(), 9, api_name="/summary")


def test_network_graph(client):
    svg_html, svg_path, dot_path = client.predict(R50.to_json(), api_name="/network_graph")
    assert ">25,028,904 parameters, 4.23 G multiply&#45;adds<" in svg_html
    assert '<g id="layer4_rest"' in svg_html
    assert Path(svg_path).read_text().count("<svg") == 1
    assert "layer4_first -> layer4_rest" in Path(dot_path).read_text()


@pytest.mark.parametrize("endpoint, args", [("/block_png", (1, 0)), ("/network_png", ())])
def test_png_downloads(client, endpoint, args):
    path = client.predict(SMALL.to_json(), *args, api_name=endpoint)
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summary(client):
    totals, table = client.predict(R50.to_json(), 3, api_name="/summary")
    assert "| total parameters | 25,028,904 |" in totals
    assert f"| multiply-adds | 4.23 G ({count_macs(R50):,}) |" in totals
    assert table.startswith('<pre class="summary-table">layer ')
    lines = table.splitlines()
    assert lines[0].split()[2:] == ["kind", "kernel", "groups", "output", "shape", "params",
                                    "MACs"]
    conv2 = next(line for line in lines if line.split()[:3] == ["conv2", "Conv2d", "3x3"])
    assert conv2.split()[3] == "32"  # form (c)'s 3x3 has groups = C
    shallow, _ = client.predict(R50.to_json(), 1, api_name="/summary")
    assert shallow == totals


def test_summary_refuses_a_network_too_big_to_build(client):
    huge = R50.replace(cardinality=4096, width_per_group=4096, form="a")
    totals, table = client.predict(huge.to_json(), 3, api_name="/summary")
    assert totals.startswith("**No summary.** ") and table == ""


def test_code_and_downloads(client):
    source, py_path, json_path, config_path = client.predict(SMALL.to_json(), api_name="/code")
    assert source.startswith('"""ResNeXt-11 (8x64d), form (c), as one standalone PyTorch file.')
    assert "        cardinality=8,  # C: parallel paths per block" in source
    assert "        depths=(1, 1, 1),  # blocks per stage" in source
    assert Path(py_path).read_text().rstrip("\n") == source.rstrip("\n")
    assert Path(py_path).name == "model.py"  # importable, as its docstring says
    assert json.loads(Path(config_path).read_text()) == SMALL.to_dict()
    assert "cardinality" in Path(json_path).read_text()


def test_onnx(client):
    onnx = pytest.importorskip("onnx")
    tiny = ResNeXtSpec(cardinality=2, width_per_group=4, depths=(1,), stem="cifar",
                       num_classes=10, image_size=16)
    file, message = client.predict(tiny.to_json(), api_name="/onnx")
    assert message.startswith("ONNX ready: ")
    assert file["visible"] is True
    graph = onnx.load(file["value"]).graph
    assert [i.name for i in graph.input] == ["images"]
    assert [o.name for o in graph.output] == ["logits"]
    dims = graph.output[0].type.tensor_type.shape.dim
    assert dims[1].dim_value == 10


def test_build(client):
    out = client.predict(json.dumps({"preset": "resnext50_32x4d", "cardinality": 64}),
                         api_name="/build")
    spec = R50.replace(cardinality=64)
    assert (out["name"], out["params"], out["macs"], out["flops"]) == (
        "ResNeXt-50 (64x4d)", count_params(spec), count_macs(spec), 2 * count_macs(spec))
    assert ">groups=64 (64 × 4 channels)<" in out["block_svg"]
    grouped = [r for r in out["summary_rows"] if r["kind"] == "Conv2d" and r["groups"] == 64]
    assert len(grouped) == 16  # one grouped 3x3 per block
    assert sum(r["params"] for r in out["summary_rows"]) == count_params(spec)
    assert "class " in out["source"]


def test_build_rejects_a_bad_spec(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="cardinality: 0 is not allowed"):
        client.predict('{"cardinality": 0}', api_name="/build")


def test_files_outside_the_output_folder_are_not_served(app_url):
    """Gradio's file route serves what the app wrote (the positive control: the /code
    download), and refuses everything else with 403, however the path is spelled."""
    from gradio_client import Client

    raw = Client(app_url, verbose=False, download_files=False)  # the server's own paths
    source, py_file, _, _ = raw.predict(TINY.to_json(), api_name="/code")
    py_path = py_file["path"]
    with urllib.request.urlopen(app_url + f"gradio_api/file={py_path}") as answer:
        assert answer.status == 200
        assert answer.read().decode().rstrip("\n") == source.rstrip("\n")
    folder = str(Path(py_path).parent)
    for path in ("/etc/passwd", str(ROOT / "app.py"), f"{folder}/../../../etc/passwd",
                 f"{folder}/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                 f"{folder}%2F..%2F..%2F..%2Fetc%2Fpasswd", "..%2F..%2F..%2Fetc%2Fpasswd"):
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(app_url + "gradio_api/file=" + path)
        assert info.value.code == 403, path


def test_the_app_listens_on_localhost_without_a_share_link(monkeypatch):
    """`python app.py` with no options: 127.0.0.1:7860, no public link, only the output
    folder allowed; GRADIO_SERVER_NAME / _PORT are respected."""
    import app

    calls = []
    monkeypatch.setattr(app.demo, "queue", lambda **kw: app.demo)
    monkeypatch.setattr(app.demo, "launch", lambda **kw: calls.append(kw))
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    app.main([])
    assert (calls[0]["server_name"], calls[0]["server_port"], calls[0]["share"]) == (
        "127.0.0.1", 7860, False)
    assert calls[0]["allowed_paths"] == [str(app.OUTPUT_DIR)]
    assert calls[0]["run_history"] is False  # no copy of every event in localStorage
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "8123")
    app.main(["--share"])
    assert (calls[1]["server_name"], calls[1]["server_port"], calls[1]["share"]) == (
        "0.0.0.0", 8123, True)


def test_a_stopped_app_leaves_no_files_behind():
    """Every file the app makes (its downloads and Gradio's copies of them) lies in one
    temporary folder, which a plain `kill` (SIGTERM) removes."""
    from gradio_client import Client

    port = free_port()
    process = launch(port)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
        _, py_file, _, _ = client.predict(TINY.to_json(), api_name="/code")
        py_path = py_file["path"]  # the server's path: <output>/gradio/<hash>/<file>.py
        folder = Path(py_path).parents[2]
        assert folder.name.startswith("resnext-builder-") and Path(py_path).exists()
        # the app's own copy, named model.py in a folder per spec (issue 13)
        assert len(list(folder.glob("*/model.py"))) == 1
    finally:
        process.terminate()
        process.wait(20)
    assert not folder.exists()


# -- phase 2: timing, the equivalence proof, comparisons, the classroom walk-through --------

def timing_args(spec, batch=2, forms=False, scope="network", confirmed=False, dtype="fp32"):
    return [spec.to_json(), "cpu", batch, None, dtype, "inference", False, False, scope, forms,
            0, confirmed, "{}"]


def test_time_three_forms_on_the_cpu(client):
    message, table, chart, last_times, columns = client.predict(
        *timing_args(TINY, forms=True), api_name="/time")
    assert columns.startswith("**Columns.** *median ms*: one batch")
    assert message.startswith("Ran on **CPU: ")
    assert "**Equal in math, not in speed.** Form (a) took " in message
    rows = table["data"]
    assert [row[1] for row in rows] == [f"ResNeXt-5 (2x4d) form ({f})" for f in "cba"]
    assert all(row[8].startswith("CPU: ") for row in rows)
    assert re.fullmatch(r"batch 2, 16×16, inference, fp32, eager, 2 warm-up \+ 10 iterations, "
                        r"seed 0, \d+ threads, time\.perf_counter", rows[0][9]), rows[0][9]
    assert rows[0][7] == "– (CPU: not tracked)"
    medians = [float(row[2].replace(",", "")) for row in rows]
    assert all(m > 0 for m in medians)
    assert "ResNeXt-5 (2x4d) form (a)" in chart.replace("RX", "ResNeXt")
    times = json.loads(last_times)
    assert times[TINY.replace(form="c").to_json(indent=None)]["median_ms"] == pytest.approx(
        medians[0], abs=0.006)  # the table rounds to 2 decimals


def test_time_asks_before_a_long_cpu_run(client):
    message, table, chart, *_ = client.predict(*timing_args(PRESETS["resnext101_64x4d"], 8),
                                               api_name="/time")
    assert re.fullmatch(r"\*\*This run would take about [\d,]+ s on the CPU\*\* \(estimated "
                        r"from its multiply-adds\)\. Press \*Run anyway\* to start it, or make "
                        r"it smaller: batch, image size, one block\.", message)
    assert table == NO_CHANGE


def test_time_refuses_what_the_cpu_cannot_do(client):
    message, table, *_ = client.predict(*timing_args(TINY, dtype="tf32"), api_name="/time")
    assert message.startswith("**Not run.** ") and "tf32" in message
    message, *_ = client.predict(*timing_args(TINY, batch=0), api_name="/time")
    assert message == ("**Not run.** Batch: 0 is not allowed; expected a whole number of "
                       "1 or more")


def test_equivalence_within_bounds(client):
    spec = TINY.replace(cardinality=4, depths=(1, 1))
    message, table, contrast, chart = client.predict(spec.to_json(), "network", 0, 1, True,
                                                     False, api_name="/equivalence")
    assert message.startswith("**Forms (a), (b) and (c) compute the same function**: every "
                              "difference is float rounding, within its bound. ResNeXt-8 (4x4d), "
                              "the whole network")
    rows = table["data"]
    assert len(rows) == 8  # forms (a), (b) x float64, float32 x eval, train
    assert {(r[0], r[2], r[3]) for r in rows} == {
        (f, d, m) for f in ("(a)", "(b)") for d in ("float64", "float32")
        for m in ("eval", "train")}
    for _form, vs, dtype, _mode, diff, _rel, bound, equal in rows:
        assert vs == "(c)" and equal == "yes"
        # the bound is measured (8 x the reference's own float32 rounding; builder.convert)
        assert bound.startswith("abs ≤ ") and float(diff) <= float(bound[6:]), bound
        assert float(bound[6:]) <= (1e-12 if dtype == "float64" else 1e-4), bound
    assert contrast.startswith("**Equal in math, not in speed.** Form (a) took ")
    assert "RX-8 (4x4d) form (c)" in chart


def test_equivalence_states_the_time_first_for_a_big_network(client):
    message, table, _, _ = client.predict(PRESETS["resnext101_64x4d"].to_json(), "network", 0,
                                          1, False, False, api_name="/equivalence")
    assert re.fullmatch(r"\*\*The proof would take about [\d,]+ s on the CPU\*\* for "
                        r"ResNeXt-101 \(64x4d\)\. Press \*Run anyway\*, or prove one block "
                        r"\(seconds\)\.", message)
    assert table == NO_CHANGE


def test_compare_sweep_reproduces_table_2(client):
    out = client.predict("sweep", PRESETS["resnet50"].to_json(), "[]", "{}",
                         api_name="/compare")
    names = [row[1] for row in out["table"]["data"]]
    assert names == ["ResNet-50", "ResNeXt-50 (2x40d)", "ResNeXt-50 (4x24d)",
                     "ResNeXt-50 (8x14d)", "ResNeXt-50 (32x4d)"]
    assert [row[3] for row in out["table"]["data"]] == [
        "25,557,032", "25,425,000", "25,292,968", "25,603,016", "25,028,904"]
    # the paper's error for all five rows (issue 13: each labelled with its table)
    assert [row[6] for row in out["table"]["data"]] == [
        f"{e}% top-1 (Table 3)" for e in ("23.9", "23.0", "22.6", "22.3", "22.2")]
    # the paper's error against C, parameters and multiply-adds; no times yet
    assert out["chart_svg"].count("<svg") == 3


def test_compare_pins_with_times_and_untrusted_storage(client):
    spec = PRESETS["resnext29_8x64d"]
    times = {spec.to_json(indent=None): {"median_ms": 12.5, "batch_size": 8,
                                         "device": "CPU: test"}}
    stored = [{"spec": PRESETS["resnet18"].to_dict(), "time": None},
              {"spec": {"cardinality": "32"}, "time": None},  # invalid: dropped
              {"spec": {"preset": "nope"}}]  # invalid: dropped
    pins_json, stored_pins, table, chart = client.predict(
        spec.to_json(), json.dumps(stored), json.dumps(times), api_name="/pin")
    assert stored_pins == json.loads(pins_json)  # what the browser keeps
    assert [row[1] for row in table["data"]] == ["ResNet-18", "ResNeXt-29 (8x64d)"]
    assert table["data"][1][5] == "12.5 ms (batch 8, CPU: test)"
    assert table["data"][1][6] == "3.65% test (Table 7, CIFAR-10)"
    assert len(json.loads(pins_json)) == 2
    assert "last measured time per batch (ms)" in chart
    pins_json, _, table, _ = client.predict(spec.to_json(), pins_json, "{}",
                                            api_name="/clear_pins")
    assert json.loads(pins_json) == [] and table["data"] in ([], [[""] * 7])
    _, _, table, _ = client.predict(stored, api_name="/restore_pins")
    assert [row[1] for row in table["data"]] == ["ResNet-18"]


def test_learn_steps_with_numbers_and_highlights(client):
    text, svg = client.predict(R50.to_json(), 2, api_name="/learn")
    assert text.startswith("### 3/8. One path: a small bottleneck")
    assert "256\\cdot4 + 9\\cdot4^2 + 4\\cdot256 = 2{,}192" in text
    assert "32\\cdot2{,}192 = 70{,}144" in text
    assert svg.count(" highlight\"") == 3
    assert '<g id="path0_conv2" class="node conv3x3 highlight">' in svg
    text, svg = client.predict(R50.to_json(), 5, api_name="/learn_step")
    assert text.startswith("### 6/8. Form (c): grouped convolution")
    assert '<g id="conv2" class="node gconv3x3 highlight">' in svg
    assert "\\frac{9 \\cdot 128 \\cdot 128}{32} = 4{,}608" in text
    text, _ = client.predict(R50.to_json(), 99, api_name="/learn_step")
    assert text.startswith("### 8/8. The shortcut")  # clamped to the last step
    text, _ = client.predict(R50.to_json(), 0, True, api_name="/learn_follow")
    assert text.startswith("### 1/8. Split, transform, aggregate")


def test_confirmed_runs_and_the_sweep_endpoint(client):
    """The "Run anyway" endpoints run what the plain ones would ask about first, and /sweep
    pins the paper's Table 2 from the page's spec."""
    message, table, *_ = client.predict(*timing_args(TINY, batch=1),
                                        api_name="/time_confirmed")
    assert message.startswith("Ran on **CPU: ")
    newest = table["data"][0]  # the session keeps earlier runs below, newest first
    assert newest[1] == "ResNeXt-5 (2x4d) form (c)" and int(newest[0]) == len(table["data"])
    message, table, _, _ = client.predict(TINY.to_json(), "network", 0, 1, False, True,
                                          api_name="/equivalence_confirmed")
    assert message.startswith("**Forms (a), (b) and (c) compute the same function**")
    assert [row[7] for row in table["data"]] == ["yes"] * 4
    pins_json, stored, table, chart = client.predict(PRESETS["resnet50"].to_json(), "[]", "{}",
                                                     api_name="/sweep")
    assert [(p["spec"]["cardinality"], p["spec"]["width_per_group"])
            for p in json.loads(pins_json)] == [(1, 64), (2, 40), (4, 24), (8, 14), (32, 4)]
    assert stored == json.loads(pins_json)
    assert [row[3] for row in table["data"]] == [
        "25,557,032", "25,425,000", "25,292,968", "25,603,016", "25,028,904"]


def test_the_readmes_api_example_works(app_url, capsys):
    """The README's gradio_client example, run as it is written (only the address is this
    test's app), prints what its comment says."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- api-example")[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert 'Client("http://127.0.0.1:7860/")' in block
    code = block.replace("http://127.0.0.1:7860/", app_url)
    exec(compile(code, "README.md", "exec"), {})  # our own README, not user input
    *_, first, second = capsys.readouterr().out.splitlines()  # after "Loaded as API: ..."
    comment = block.split("# ", 1)[1].splitlines()[0]
    assert first == comment == "ResNeXt-50 (64x4d) 45192488 7981335656"
    spec = R50.replace(cardinality=64)
    assert first.split()[-2:] == [str(count_params(spec)), str(count_macs(spec))]
    rows, title = second.split(" ", 1)
    assert int(rows) > 100 and title.startswith('"""ResNeXt-50 (64x4d), form (c)')
