"""The app in a real browser: Debian's chromium, headless, driven by Playwright.

One app (`python app.py --port N`) and one browser per module. Results arrive through
Gradio's queue, so every check waits with `expect(...)`. The screenshots for the README are
written to assets/ when they are missing or when UPDATE_SCREENSHOTS=1.
"""

import os
import re
import shutil
from pathlib import Path

import pytest

from builder import PRESETS, count_params
from builder.complexity import matched_width

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--no-first-run"]
ASSETS = Path(__file__).resolve().parent.parent / "assets"
WAIT = 30_000  # ms: a loaded 2-core machine can be slow; results usually come in < 1 s

# scripts/test.sh installs both and sets REQUIRE_BROWSER=1: there, a missing one is a failure,
# not a silent skip. A bare `pytest` elsewhere skips these tests and says why.
_missing = None if Path(CHROMIUM).exists() else f"{CHROMIUM} is not installed"
if _missing is None:
    try:
        from playwright import sync_api
    except ImportError:
        _missing = "playwright is not installed"
if _missing is not None:
    if os.environ.get("REQUIRE_BROWSER") == "1":
        raise RuntimeError(f"REQUIRE_BROWSER=1 but {_missing} (run scripts/setup.sh --dev)")
    pytest.skip(f"{_missing} (scripts/setup.sh --dev installs it)", allow_module_level=True)
expect = sync_api.expect
expect.set_options(timeout=WAIT)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                  accept_downloads=True)
    page = context.new_page()
    yield page
    context.close()


def open_page(page, url: str, headline: str):
    """Open a link and wait until the page has restored it (the share link is set then)."""
    page.goto(url)
    expect(page.locator("#share-link textarea")).to_have_value(re.compile(r"^http.*/\?"))
    expect(page.locator("#headline")).to_contain_text(headline)


def pick_preset(page, name: str):
    page.locator("#preset input").click()
    page.get_by_role("option", name=name, exact=True).click()


def assert_on_top(page, selector: str):
    """Nothing is drawn over the element: at a grid of points inside its bounding box, the
    topmost element is it or inside it."""
    box = page.locator(selector).bounding_box()
    assert box and box["width"] > 0 and box["height"] > 0
    covered = page.evaluate("""([sel, box]) => {
        const el = document.querySelector(sel), bad = [];
        for (const fx of [0.05, 0.25, 0.5, 0.75, 0.95]) for (const fy of [0.1, 0.5, 0.9]) {
            const x = box.x + box.width * fx, y = box.y + box.height * fy;
            const top = document.elementFromPoint(x, y);
            if (!top || !el.contains(top)) bad.push([x, y, top && (top.id || top.className)]);
        }
        return bad;
    }""", [selector, box])
    assert covered == []


def save_screenshot(page, name: str, tmp_path: Path):
    """Take the screenshot; keep it in assets/ where missing or when asked to update."""
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    target = ASSETS / name
    if os.environ.get("UPDATE_SCREENSHOTS") == "1" or not target.exists():
        ASSETS.mkdir(exist_ok=True)
        shutil.copyfile(shot, target)


def test_preset_cardinality_block_summary_and_code(page, app_url, tmp_path):
    open_page(page, app_url, "ResNeXt-50 (32x4d)")
    expect(page.locator("#headline")).to_contain_text("25,028,904 parameters")
    pick_preset(page, "resnext101_64x4d")
    expect(page.locator("#headline")).to_contain_text(
        "ResNeXt-101 (64x4d), form (c) · 83,455,272 parameters · 15.46 G multiply-adds · "
        "30.92 G FLOPs (= 2 × 15.46 G multiply-adds; the paper counts one multiply-add as "
        "one FLOP: 15.5 × 10⁹ in its Table 1's terms)")
    # against its own C = 1 counterpart, ResNet-101 (the default baseline)
    mine, theirs = PRESETS["resnext101_64x4d"], PRESETS["resnet101"]
    grown = count_params(mine) - count_params(theirs)
    expect(page.locator("#overview")).to_contain_text(
        "baseline: ResNet-101 (its C = 1 counterpart)")
    expect(page.locator("#overview")).to_contain_text(
        f"+{grown:,} (+{100 * grown / count_params(theirs):.2f}%)")

    page.locator("#cardinality input").fill("16")
    spec = PRESETS["resnext101_64x4d"].replace(cardinality=16)
    expect(page.locator("#headline")).to_contain_text(f"{count_params(spec):,} parameters")
    page.get_by_role("tab", name="Block", exact=True).click()
    block = page.locator("#block-svg svg")
    expect(block.locator("g#conv2")).to_contain_text("groups=16 (16 × 4 channels)")
    expect(block).to_contain_text("ResNeXt-101 (16x4d): conv2 (layer1), block 2 of 3")
    page.locator("#stage").get_by_text("conv4 (layer3)").click()
    expect(block).to_contain_text("conv4 (layer3), block 2 of 23")  # a later block: Fig. 3's
    # wait until the picker shows the stage's choices: in one CI run under load the pick did
    # not take (the drawing stayed on block 2), most likely made on a list being replaced
    expect(page.locator("#block-index input")).to_have_value(re.compile(r"^block 2 of 23: "))
    page.locator("#block-index input").click()
    page.get_by_role("option", name="block 1 of 23: 512→1024, stride 2, projection").click()
    expect(page.locator("#block-index input")).to_have_value(
        "block 1 of 23: 512→1024, stride 2, projection")
    expect(block).to_contain_text("conv4 (layer3), block 1 of 23")
    expect(block.locator("g#conv2")).to_contain_text("groups=16 (16 × 16 channels), stride 2")
    expect(page.locator("#share-link textarea")).to_have_value(
        re.compile(r"/\?preset=resnext101_64x4d&C=16&stage=2$"))
    assert page.url.endswith("/?preset=resnext101_64x4d&C=16&stage=2")

    with page.expect_download() as download:
        page.locator("#block-png").click()
    png = download.value
    assert png.suggested_filename.endswith("-conv4-block1.png")
    assert Path(png.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    page.get_by_role("tab", name="Summary").click()
    totals = page.locator("#summary-totals")
    expect(totals).to_contain_text(f"total parameters {count_params(spec):,}")
    expect(page.locator("#summary-table")).to_contain_text("groups")

    page.get_by_role("tab", name="Code").click()
    expect(page.locator("#code")).to_contain_text(
        "ResNeXt-101 (16x4d), form (c), as one standalone PyTorch file.")


def test_the_baseline_is_kept_next_to_its_control_and_in_the_link(page, app_url):
    open_page(page, app_url + "?preset=resnext50_32x4d&baseline=resnet101", "ResNeXt-50 (32x4d)")
    expect(page.locator("#baseline input")).to_have_value("resnet101")
    expect(page.locator("#overview")).to_contain_text("baseline: ResNet-101 (resnet101)")
    page.locator("#baseline input").click()
    page.get_by_role("option", name="resnet18", exact=True).click()
    expect(page.locator("#share-link textarea")).to_have_value(
        re.compile(r"/\?preset=resnext50_32x4d&baseline=resnet18$"))
    expect(page.locator("#overview")).to_contain_text("baseline: ResNet-18 (resnet18)")
    page.locator("#baseline input").click()
    page.get_by_role("option", name="wide_resnet50_2", exact=True).click()
    page.locator("#keep input").check()  # solve d for C at the complexity of the baseline
    page.locator("#cardinality input").fill("8")
    spec = PRESETS["resnext50_32x4d"].replace(cardinality=8)
    d = matched_width(spec, PRESETS["wide_resnet50_2"])
    assert d == 33  # 8 x (256·33 + 9·33² + 33·256) = 213,576 ~ 212,992, the d=128 block
    expect(page.locator("#width input")).to_have_value(str(d))
    expect(page.locator("#headline")).to_contain_text(
        f"{count_params(spec.replace(width_per_group=d)):,} parameters")


def test_deep_link_restores_the_configuration(page, app_url):
    open_page(page, app_url + "?preset=resnet18&C=2&form=a&stage=1", "ResNeXt-18 (2x64d)")
    expect(page.locator("#cardinality input")).to_have_value("2")
    expect(page.locator("#preset input")).to_have_value("resnet18")
    expect(page.locator("#form input[value='a']")).to_be_checked()
    expect(page.locator("#block input[value='basic']")).to_be_checked()
    page.get_by_role("tab", name="Block", exact=True).click()
    block = page.locator("#block-svg svg")
    expect(block).to_contain_text("ResNeXt-18 (2x64d): conv3 (layer2), block 2 of 2, form (a)")
    expect(block.locator("g#path1_conv1")).to_contain_text("3×3 conv, 128→128")
    expect(page.locator("#share-link textarea")).to_have_value(
        re.compile(r"/\?preset=resnet18&C=2&form=a&stage=1$"))


def test_validation_error_keeps_the_last_results(page, app_url, tmp_path):
    open_page(page, app_url + "?preset=resnext50_32x4d&form=a", "ResNeXt-50 (32x4d), form (a)")
    page.get_by_role("tab", name="Block", exact=True).click()
    block = page.locator("#block-svg svg")
    expect(block).to_contain_text("29 more identical paths")
    save_screenshot(page, "screenshot.png", tmp_path)

    error = page.locator("#spec-error")
    headline = "ResNeXt-50 (32x4d), form (a) · 25,028,904 parameters"
    page.locator("#cardinality input").fill("0")
    expect(error).to_contain_text("Not applied. Cardinality C: 0 is not allowed; expected a "
                                  "whole number from 1 to 4096")
    # the bad field itself is marked, and only it
    expect(page.locator("#cardinality")).to_have_css("outline-style", "solid")
    expect(page.locator("#width")).to_have_css("outline-style", "none")
    expect(page.locator("#headline")).to_contain_text(headline)
    expect(block).to_contain_text("29 more identical paths")
    page.locator("#cardinality input").fill("32")
    expect(error).to_be_hidden()

    depths = page.locator("#depths textarea")
    depths.click()
    depths.press("End")
    depths.press_sequentially(", x")  # typed, as a user would: "3, 4, 6, 3, x"
    expect(error).to_contain_text("Not applied. Blocks per stage: “3, 4, 6, 3, x” is not "
                                  "allowed; expected whole numbers separated by commas, e.g. "
                                  "3, 4, 6, 3")
    expect(page.locator("#depths")).to_have_css("outline-style", "solid")
    expect(page.locator("#headline")).to_contain_text(headline)
    expect(block).to_contain_text("29 more identical paths")
    expect(page.locator("#share-link textarea")).to_have_value(
        re.compile(r"/\?preset=resnext50_32x4d&form=a$"))

    depths.fill("3, 4, 6")
    depths.press("Enter")  # a pasted value is applied on Enter or when the box loses focus
    expect(error).to_be_hidden()

    # a control far down the column: the message is in view next to it, not off screen
    size = page.locator("#image-size input")
    size.fill("3")
    expect(error).to_contain_text("Not applied. Image size: 3 is not allowed; expected a "
                                  "whole number from 8 to 2048")
    expect(size).to_be_in_viewport()
    expect(error).to_be_in_viewport()
    assert_on_top(page, "#spec-error")  # scrolled over the controls, nothing covers it
    size.fill("224")
    expect(error).to_be_hidden()
    page.locator("#cardinality input").fill("8")
    expect(page.locator("#headline")).to_contain_text("ResNeXt-41 (8x4d), form (a)")
    expect(block).to_contain_text("5 more identical paths")


def test_dark_theme_screenshot(page, app_url, tmp_path):
    open_page(page, app_url + "?preset=resnext50_32x4d&stage=1&__theme=dark",
              "ResNeXt-50 (32x4d)")
    page.get_by_role("tab", name="Block", exact=True).click()
    expect(page.locator("#block-svg svg")).to_contain_text("groups=32 (32 × 8 channels)")
    assert page.evaluate("document.body.classList.contains('dark')")
    save_screenshot(page, "screenshot-dark.png", tmp_path)


# -- phase 2 ----------------------------------------------------------------------------------
TINY_LINK = "?C=2&d=4&depths=1&stem=cifar&size=16&classes=10"


def test_cpu_timing_is_labelled_cpu(page, app_url):
    open_page(page, app_url + TINY_LINK, "ResNeXt-5 (2x4d)")
    page.get_by_role("tab", name="Timing").click()
    expect(page.locator("#timing-intro")).to_contain_text("This server has no GPU")
    page.locator("#time-batch input").fill("2")
    page.locator("#time-run").click()
    message = page.locator("#time-message")
    expect(message).to_contain_text(re.compile(r"Ran on CPU: .+, \d+ threads; torch "))
    table = page.locator("#time-table")
    expect(table).to_contain_text("ResNeXt-5 (2x4d) form (c)")
    expect(table).to_contain_text("batch 2, 16×16, inference, fp32, eager, 2 warm-up + 10 "
                                  "iterations, seed 0, ")
    expect(page.locator("#time-chart svg")).to_contain_text("RX-5 (2x4d) form (c)")


def test_equivalence_proof_shows_the_differences(page, app_url):
    open_page(page, app_url + TINY_LINK + "&form=a", "ResNeXt-5 (2x4d), form (a)")
    page.get_by_role("tab", name="Equivalence").click()
    page.locator("#proof-scope").get_by_text("whole network").click()
    page.locator("#proof-run").click()
    expect(page.locator("#proof-message")).to_contain_text(
        "Forms (a), (b) and (c) compute the same function: every difference is float "
        "rounding, within its bound. ResNeXt-5 (2x4d), the whole network")
    table = page.locator("#proof-table")
    expect(table).to_contain_text("abs ≤ ")  # the bound is measured: checked per row below
    rows = table.get_by_role("row")
    expect(rows).to_have_count(5)  # a header; forms (b), (c) against (a) in float64, float32
    for i in range(1, 5):
        form, vs, dtype, mode, diff, _rel, bound, equal = [
            text.strip() for text in rows.nth(i).get_by_role("gridcell").all_inner_texts()]
        assert (vs, mode, equal) == ("(a)", "eval", "yes")
        # the bound is measured (8 x the reference's own float32 rounding; builder.convert)
        assert bound.startswith("abs ≤ ") and float(diff) <= float(bound[6:]), bound
        assert float(bound[6:]) <= (1e-12 if dtype == "float64" else 1e-4), bound
    expect(page.locator("#proof-contrast")).to_contain_text("Equal in math, not in speed.")


def test_pins_survive_a_reload(page, app_url):
    open_page(page, app_url + "?preset=resnet18", "ResNet-18")
    page.get_by_role("tab", name="Compare").click()
    page.locator("#pin").click()
    table = page.locator("#compare-table")
    expect(table).to_contain_text("11,689,512")
    pick_preset(page, "resnext50_32x4d")
    expect(page.locator("#headline")).to_contain_text("ResNeXt-50 (32x4d)")
    page.locator("#pin").click()
    expect(table).to_contain_text("ResNeXt-50 (32x4d)")
    expect(table).to_contain_text("22.2% top-1 (Table 3)")
    page.reload()
    expect(page.locator("#headline")).to_contain_text("ResNeXt-50 (32x4d)")
    page.get_by_role("tab", name="Compare").click()
    expect(table).to_contain_text("ResNet-18")
    expect(table).to_contain_text("25,028,904")
    expect(page.locator("#compare-chart")).to_contain_text("parameters (millions)")
    page.locator("#clear-pins").click()
    expect(table).not_to_contain_text("ResNet-18")


def test_learn_step_through_highlights_the_block(page, app_url, tmp_path):
    open_page(page, app_url + "?preset=resnext50_32x4d", "ResNeXt-50 (32x4d)")
    page.get_by_role("tab", name="Learn").click()
    text = page.locator("#learn-text")
    expect(text).to_contain_text("1/8. Split, transform, aggregate")
    svg = page.locator("#learn-svg svg")
    expect(svg.locator("g.highlight")).to_have_count(6)
    page.locator("#learn-next").click()
    page.locator("#learn-next").click()
    expect(text).to_contain_text("3/8. One path: a small bottleneck")
    expect(text).to_contain_text("70,144")  # C·(in·d + 9d² + d·out), rendered by KaTeX
    expect(svg.locator("g.highlight")).to_have_count(3)
    expect(svg.locator("g#path0_conv2.highlight")).to_contain_text("3×3 conv, 4→4")
    save_screenshot(page, "screenshot-learn.png", tmp_path)
    for _ in range(3):
        page.locator("#learn-next").click()
    expect(text).to_contain_text("6/8. Form (c): grouped convolution")
    expect(svg.locator("g#conv2.highlight")).to_contain_text("groups=32 (32 × 4 channels)")
    page.locator("#learn-previous").click()
    expect(text).to_contain_text("5/8. Form (b): concatenate early")
    expect(svg.locator("g#concat.highlight")).to_contain_text("32 × 4 = 128 channels")


# -- issue 13: ready for a lecture -------------------------------------------------------------

def test_sweep_shows_the_papers_errors_and_a_chart(page, app_url):
    open_page(page, app_url + "?preset=resnext50_32x4d", "ResNeXt-50 (32x4d)")
    expect(page.locator("#headline")).to_contain_text(
        "8.46 G FLOPs (= 2 × 4.23 G multiply-adds; the paper counts one multiply-add as one "
        "FLOP: 4.2 × 10⁹ in its Table 1's terms)")
    page.get_by_role("tab", name="Compare").click()
    # no "clear" first: a clear still queued when the sweep lands would empty the table again;
    # pins already stored only add rows (the sweep's five are the newest, kept)
    page.locator("#sweep").click()
    table = page.locator("#compare-table")
    for error in ("23.9", "23.0", "22.6", "22.3", "22.2"):
        expect(table).to_contain_text(f"{error}% top-1 (Table 3)")
    chart = page.locator("#compare-chart svg.points-chart")
    expect(chart).to_contain_text("22.3% (8 × 14d)")
    expect(chart).to_contain_text("cardinality C")
    expect(page.locator("#table4-chart svg")).to_contain_text("deeper: ResNet-200")
    expect(page.locator("#paper-table")).to_contain_text("Wide ResNet 28-10")
    page.get_by_role("tab", name="Overview").click()
    page.get_by_text("The paper's Table 1 for this network").click()
    expect(page.locator("#table1")).to_contain_text("[1×1, 128; 3×3, 128, C=32; 1×1, 256] × 3")


def test_learn_math_fits_at_1280(browser, app_url):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        open_page(page, app_url + "?preset=resnext50_32x4d", "ResNeXt-50 (32x4d)")
        page.locator("#start-here").click()  # "Start here" opens Learn
        text = page.locator("#learn-text")
        expect(text).to_contain_text("1/8. Split, transform, aggregate")
        for step in range(1, 9):
            expect(text).to_contain_text(f"{step}/8.")
            expect(text.locator(".katex").first).to_be_visible()
            assert "highlighted:" not in text.inner_text()
            clipped = page.evaluate("""() => [...document.querySelectorAll(
                '#learn-text .katex-display')].filter((e) => e.scrollWidth > e.clientWidth)
                .map((e) => [e.scrollWidth, e.clientWidth])""")
            assert clipped == [], f"step {step}: {clipped}"
            if step < 8:
                page.locator("#learn-next").click()
    finally:
        context.close()


def test_phone_results_first_and_numbers_whole(browser, app_url, tmp_path):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        open_page(page, app_url + "?preset=resnext50_32x4d", "ResNeXt-50 (32x4d)")
        top = page.locator("#headline").bounding_box()["y"]
        assert top < 844, top  # the results are on the first screen, above the controls
        expect(page.locator("#stages")).to_contain_text("25,028,904")
        broken = page.evaluate("""() => {
            const bad = [];
            for (const cell of document.querySelectorAll('#overview td, #stages td')) {
                const text = cell.innerText.trim();
                if (!/^[-+−0-9.,%→×()GMk ]+$/.test(text) || !/[0-9]/.test(text)) continue;
                const range = document.createRange();
                range.selectNodeContents(cell);
                const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
                if (tops.size > 1) bad.push(text);
            }
            return bad;
        }""")
        assert broken == []
        save_screenshot(page, "screenshot-phone.png", tmp_path)
    finally:
        context.close()


def test_dark_mode_is_kept_on_reload(page, app_url):
    open_page(page, app_url + "?preset=resnet18&__theme=dark", "ResNet-18")
    expect(page).to_have_url(re.compile(r"\?preset=resnet18&__theme=dark$"))
    expect(page.locator("#share-link textarea")).to_have_value(re.compile(r"preset=resnet18$"))
    page.reload()
    expect(page.locator("#headline")).to_contain_text("ResNet-18")
    assert page.evaluate("document.body.classList.contains('dark')")
    expect(page).to_have_url(re.compile(r"__theme=dark"))


def test_a_checkpoint_is_uploaded_applied_and_converted(page, app_url, tmp_path):
    """A DataParallel checkpoint nested under "state_dict", as a trainer saves it: its spec is
    told from its shapes and applied to the controls; converted to form (a) it downloads as
    safetensors with form (a)'s keys and the same tensors, split per path. A file that is not
    a state dict is refused in the note, and the controls stay as they were."""
    import torch
    from safetensors.torch import load_file

    from builder import build_model, randomize_

    spec = PRESETS["resnext50_32x4d"].replace(cardinality=4, width_per_group=4,
                                              depths=(1, 1, 1, 1), num_classes=10)
    state = randomize_(build_model(spec), seed=3).state_dict()
    checkpoint = tmp_path / "trained.pth"
    torch.save({"epoch": 7, "state_dict": {f"module.{k}": v for k, v in state.items()}},
               checkpoint)
    not_weights = tmp_path / "notes.pth"
    torch.save([1, 2, 3], not_weights)

    open_page(page, app_url + TINY_LINK, "ResNeXt-5 (2x4d)")
    page.get_by_role("tab", name="Weights").click()
    files = page.locator("#weights-file input[type=file]")
    files.set_input_files(str(not_weights))
    expect(page.locator("#weights-note")).to_have_text(
        "Not loaded. notes.pth: not a state dict: the file holds a list, not a mapping of "
        "names to tensors")
    expect(page.locator("#headline")).to_contain_text("ResNeXt-5 (2x4d)")
    expect(page.locator("#weights-apply")).to_be_disabled()

    page.locator("#weights-file").get_by_role("button", name="Clear").click()
    files.set_input_files(str(checkpoint))
    note = page.locator("#weights-note")
    expect(note).to_contain_text(f"trained.pth: {spec.name}, form (c); C = 4, d = 4, depths "
                                 "1, 1, 1, 1; no preset.")
    page.locator("#weights-apply").click()
    expect(page.locator("#headline")).to_contain_text(f"{spec.name}, form (c) · "
                                                      f"{count_params(spec):,} parameters")
    expect(page.locator("#cardinality input")).to_have_value("4")

    page.locator("#weights-form").get_by_text("(a)", exact=True).click()
    page.locator("#weights-convert").click()
    expect(page.locator("#weights-message")).to_contain_text("Ready: ")
    with page.expect_download() as download:
        page.locator("#weights-download").click()
    saved = tmp_path / "a.safetensors"
    download.value.save_as(saved)
    converted = load_file(str(saved))
    assert set(converted) == set(build_model(spec.replace(form="a"), device="meta")
                                 .state_dict())
    # path i's first 1x1 holds rows [4i, 4i + 4) of the grouped model's conv1
    for i in range(4):
        assert torch.equal(converted[f"layer1.0.paths.{i}.conv1.weight"],
                           state["layer1.0.conv1.weight"][4 * i:4 * i + 4])
    assert torch.equal(converted["fc.weight"], state["fc.weight"])


def _view_boxes(page, selector: str) -> list[list[float]]:
    return page.evaluate("(sel) => [...document.querySelectorAll(sel)].map((s) => "
                         "s.getAttribute('viewBox').split(' ').map(Number))", selector)


def test_presentation_mode_full_screen_zoom_pan_and_three_forms(page, app_url, tmp_path):
    """Issue 13 item 4: the drawing full screen on demand, zoomed as a vector (the SVG's
    viewBox: never pixels), panned by a drag, fitted again; the three forms side by side in
    one view; the block picked within the stage (Fig. 3's block first)."""
    open_page(page, app_url + "?preset=resnext50_32x4d", "ResNeXt-50 (32x4d)")
    page.get_by_role("tab", name="Block").click()
    drawing = page.locator("#block-svg")
    expect(drawing).to_contain_text("conv2 (layer1), block 2 of 3, form (c)")
    expect(page.locator("#block-index input")).to_have_value("block 2 of 3: 256→256, identity "
                                                             "(as Fig. 3)")
    page.locator("#block-index input").click()
    page.get_by_role("option", name="block 1 of 3: 64→256, projection").click()
    expect(drawing).to_contain_text("conv2 (layer1), block 1 of 3, form (c)")
    expect(drawing).to_contain_text("1×1 conv, 64→128")

    page.locator("#block-forms input").check()
    expect(drawing.locator("svg")).to_have_count(3)
    expect(drawing.locator("figcaption")).to_have_text(
        ["form (a): aggregated paths", "form (b): early concatenation",
         "form (c): grouped convolution"])
    home = _view_boxes(page, "#block-svg svg")
    drawing.get_by_role("button", name="Full screen (Esc leaves it)").click()
    page.wait_for_function("document.fullscreenElement && "
                           "document.fullscreenElement.matches('#block-svg .graph-set')")
    widths = [drawing.locator("svg").nth(i).bounding_box()["width"] for i in range(3)]
    assert min(widths) > 1400 / 3 - 40  # each a third of the screen
    page.keyboard.press("+")
    zoomed = _view_boxes(page, "#block-svg svg")
    for (*_, w0, h0), (*_, w, h) in zip(home, zoomed, strict=True):
        assert abs(w - w0 / 1.5) < 1e-3 * w0 and abs(h - h0 / 1.5) < 1e-3 * h0
    save_screenshot(page, "screenshot-forms-full-screen.png", tmp_path)
    box = drawing.locator("svg").nth(2).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 60, box["y"] + box["height"] / 2 + 40,
                    steps=4)
    page.mouse.up()
    panned = _view_boxes(page, "#block-svg svg")[2]
    assert panned[0] < zoomed[2][0] and panned[1] < zoomed[2][1]  # dragged right and down
    assert panned[2:] == pytest.approx(zoomed[2][2:], rel=1e-6)  # a pan keeps the zoom
    drawing.get_by_role("button", name="Leave full screen (or Esc)").click()
    page.wait_for_function("!document.fullscreenElement")
    expect(drawing.get_by_role("button", name="Full screen (Esc leaves it)")).to_be_visible()
    drawing.get_by_role("button", name="Whole drawing").click()
    # the SVG keeps a viewBox as 32-bit floats: 323.3333435 for the 323.33333 it was given
    assert _view_boxes(page, "#block-svg svg") == [pytest.approx(b, rel=1e-6) for b in home]
    # out of full screen, a plain wheel scrolls the page; with Ctrl it zooms
    svg = drawing.locator("svg").nth(2)
    svg.hover()
    page.mouse.wheel(0, -100)
    assert _view_boxes(page, "#block-svg svg")[2] == pytest.approx(home[2], rel=1e-6)
    page.keyboard.down("Control")
    page.mouse.wheel(0, -100)
    page.keyboard.up("Control")
    assert _view_boxes(page, "#block-svg svg")[2][2] < home[2][2]


def test_timing_controls_say_what_they_do_and_the_figures_fit_at_1440(browser, app_url):
    """Issue 13 item 9: the empty image size shows the spec's size (not 0); one block is
    timed in the three forms and the forms box steps aside, keeping its value; at 1440 px the
    img/s, TFLOP/s and % of peak columns are on screen, and % of peak is explained."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    try:
        open_page(page, app_url + TINY_LINK, "ResNeXt-5 (2x4d)")
        page.get_by_role("tab", name="Timing").click()
        size = page.locator("#time-size textarea")
        expect(size).to_have_value("")
        expect(size).to_have_attribute("placeholder", "the spec's: 16")
        forms = page.locator("#time-forms")
        page.locator("#time-scope").get_by_text("one block of the stage shown, in the three "
                                                "forms").click()
        expect(forms).to_be_hidden()
        page.locator("#time-scope").get_by_text("whole network").click()
        expect(forms).to_be_visible()
        expect(forms.locator("input")).not_to_be_checked()
        page.locator("#time-batch input").fill("2")
        page.locator("#time-run").click()
        expect(page.locator("#time-table")).to_contain_text("ResNeXt-5 (2x4d) form (c)")
        for header in ("median ms", "img/s", "TFLOP/s", "% of peak"):
            box = page.locator("#time-table th").filter(has_text=header).first.bounding_box()
            assert box is not None and box["x"] + box["width"] <= 1440, header
        expect(page.locator("#time-columns")).to_contain_text(
            re.compile(r"% of peak: that, as a share of this device's matmul peak in the same "
                       r"dtype \([\d.]+ TFLOP/s in fp32, measured here"))
    finally:
        context.close()
