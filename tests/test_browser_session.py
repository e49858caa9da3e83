"""A scripted session through every control and every tab, as a lecturer preparing a class
would go, with the server's own log read at the end: it holds no traceback (issue 13, item 11:
"a session that touches every control and every tab leaves no traceback in the server log").

A server of its own (its log is the test's), the browser of tests/test_browser.py.
"""

import re
import tempfile

import pytest
from test_app import free_port, launch
from test_browser import TINY_LINK, browser, expect, open_page  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser

SMALL_LINK = "?preset=resnext50_32x4d&depths=1,1&size=32"


@pytest.fixture()
def logged_app():
    """`python app.py` on a free port, its output (stdout and stderr) in a file."""
    log = tempfile.TemporaryFile()
    port = free_port()
    process = launch(port, output=log)
    yield f"http://127.0.0.1:{port}/", log
    process.terminate()
    process.wait(10)


def _server_log(log) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")


def _pick(page, control: str, option: str) -> None:
    page.locator(f"#{control} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def _type(box, text: str) -> None:
    """Typed key by key, as a user does (Gradio's textbox does not see Playwright's fill)."""
    box.fill("")
    box.press_sequentially(text)


def _tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def _controls(page) -> None:
    """Every control of the left column, one at a time, each waited for."""
    headline = page.locator("#headline")
    _pick(page, "preset", "resnext101_32x8d")
    expect(headline).to_contain_text("ResNeXt-101 (32x8d)")
    _pick(page, "preset", "resnext50_32x4d")
    expect(headline).to_contain_text("ResNeXt-50 (32x4d)")
    page.locator("#cardinality input").fill("8")
    expect(headline).to_contain_text("ResNeXt-50 (8x4d)")
    page.locator("#width input").fill("14")
    expect(headline).to_contain_text("ResNeXt-50 (8x14d)")
    page.locator("#keep input").check()
    page.locator("#cardinality input").fill("32")
    expect(headline).to_contain_text("ResNeXt-50 (32x4d)")  # d solved against ResNet-50
    page.locator("#keep input").uncheck()
    _pick(page, "baseline", "resnet101")
    expect(page.locator("#overview")).to_contain_text("ResNet-101")
    _pick(page, "baseline", "auto: its C = 1 counterpart")
    depths = page.locator("#depths textarea")
    _type(depths, "3,4,,6")  # refused, named, and the last results stay
    expect(page.locator("#spec-error")).to_contain_text("Blocks per stage")
    _type(depths, "1, 1")
    expect(page.locator("#spec-error")).to_be_hidden()
    page.locator("#add-stage").click()
    expect(depths).to_have_value("1, 1, 1")
    page.locator("#remove-stage").click()
    expect(depths).to_have_value("1, 1")
    for control, value in (("form", "a"), ("form", "b"), ("form", "c"), ("block", "basic"),
                           ("block", "bottleneck"), ("stem", "cifar"), ("stem", "imagenet"),
                           ("stride-on", "1x1"), ("stride-on", "3x3")):
        page.locator(f"#{control} input[value='{value}']").check()
        expect(page.locator(f"#{control} input[value='{value}']")).to_be_checked()
    page.locator("#image-size input").fill("32")
    page.locator("#num-classes input").fill("10")
    expect(headline).to_contain_text("at 32×32")
    page.locator("#controls").get_by_text("More", exact=True).click()
    page.locator("#stem-width input").fill("32")
    page.locator("#in-channels input").fill("1")
    link = page.locator("#share-link textarea")
    page.locator("#zero-init input").check()
    expect(link).to_have_value(re.compile(r"&zero_init=1"))
    page.locator("#zero-init input").uncheck()
    expect(link).not_to_have_value(re.compile(r"zero_init"))
    expect(link).to_have_value(re.compile(r"&stem_width=32"))


def _tabs(page) -> None:
    """Every tab, and what each one runs, on the small network the controls left."""
    _tab(page, "Overview")
    expect(page.locator("#overview")).to_contain_text("parameters")
    _tab(page, "Block")
    expect(page.locator("#block-svg svg")).to_have_count(1)
    page.locator("#stage").get_by_text("conv3 (layer2)").click()
    expect(page.locator("#block-svg")).to_contain_text("conv3 (layer2), block 1 of 1")
    page.locator("#block-forms input").check()
    expect(page.locator("#block-svg svg")).to_have_count(3)
    page.locator("#block-forms input").uncheck()
    with page.expect_download():
        page.locator("#block-png").click()
    _tab(page, "Network")
    expect(page.locator("#network-svg svg")).to_have_count(1)
    with page.expect_download():
        page.locator("#network-png").click()
    _tab(page, "Summary")
    expect(page.locator("#summary-totals")).to_contain_text("total parameters")
    page.locator("#summary-depth").get_by_text("4", exact=True).click()
    expect(page.locator("#summary-table")).to_contain_text("conv1")
    _tab(page, "Code")
    expect(page.locator("#code")).to_contain_text("as one standalone PyTorch file")
    _tab(page, "Weights")
    expect(page.locator("#weights-intro")).to_be_visible()
    _tab(page, "Timing")
    page.locator("#time-batch input").fill("1")
    page.locator("#time-scope").get_by_text("one block of the stage shown, in the three "
                                            "forms").click()
    page.locator("#time-run").click()
    expect(page.locator("#time-table")).to_contain_text("form (a)")
    page.locator("#time-scope").get_by_text("whole network").click()
    _tab(page, "Profile")
    page.locator("#profile-batch input").fill("1")
    page.locator("#profile-iters input").fill("3")
    page.locator("#profile-forms-box input").uncheck()
    page.locator("#profile-run").click()
    # the profile runs the step under torch.profiler, then measures memory (tens of seconds on
    # two loaded cores)
    expect(page.locator("#profile-layers")).to_contain_text("conv", timeout=180_000)
    _tab(page, "Equivalence")
    page.locator("#proof-batch input").fill("1")
    page.locator("#proof-run").click()
    expect(page.locator("#proof-message")).to_contain_text("compute the same")
    _tab(page, "Compare")
    page.locator("#pin").click()
    expect(page.locator("#compare-table")).to_contain_text("ResNeXt")
    page.locator("#sweep").click()
    table = page.locator("#compare-table")
    expect(table).to_contain_text("ResNet-8")  # Table 2's sweep of this network: C = 1 ...
    for cardinality in (2, 4, 8, 32):
        expect(table).to_contain_text(re.compile(rf"ResNeXt-8 \({cardinality}x\d+d\)"))
    page.locator("#clear-pins").click()
    _tab(page, "Learn")
    expect(page.locator("#learn-text")).to_contain_text("1/8")
    page.locator("#learn-next").click()
    expect(page.locator("#learn-text")).to_contain_text("2/8")
    page.locator("#learn-previous").click()
    expect(page.locator("#learn-text")).to_contain_text("1/8")


def test_every_control_and_tab_leaves_a_clean_server_log(browser, logged_app):  # noqa: F811
    url, log = logged_app
    context = browser.new_context(viewport={"width": 1440, "height": 900},
                                  accept_downloads=True)
    page = context.new_page()
    try:
        open_page(page, url, "ResNeXt-50 (32x4d)")
        _controls(page)
        _tabs(page)
        page.reload()  # and a reload keeps the configuration, with nothing logged
        expect(page.locator("#headline")).to_contain_text("at 32×32")
    finally:
        context.close()
    text = _server_log(log)
    assert "Traceback" not in text, text[-6000:]
    assert not re.search(r"(?m)^\w*(Error|Exception)\b", text), text[-6000:]
