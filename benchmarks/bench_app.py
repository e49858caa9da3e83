"""How long the app takes from a control change to updated analytics and to all its views.

    .venv/bin/python benchmarks/bench_app.py             # compute + through the API
    .venv/bin/python benchmarks/bench_app.py --browser   # + chromium, end to end

Three measurements per preset (resnext50_32x4d, resnext101_64x4d), each for a spec the app has
not seen (caches cleared, or a cardinality not used before):
  compute   what the handlers compute, in this process: the analytics (`builder.views`
            counts, tables, formula, share link) and the four heavy views (block SVG, network
            SVG, torchinfo summary, exported source), one after another and, as the app runs
            them (four events), in parallel threads.
  api       the running app (`python app.py`) through gradio_client: /analyze, then the four
            view endpoints submitted together, as the page's events fire them.
  cold      the first change after start-up, through the API: what the first user pays
            (torchinfo's first summary in a process is the slow one).
  browser   Debian's chromium: type a new cardinality and time, inside the page, until each
            view shows the new numbers: the headline, the overview (its totals; the per-stage
            table arrives in the same event), the block graph,
            the network graph, the summary totals and the code (every tab opened once
            before, so that it is mounted); the page is left to settle between changes.
            Chromium shares the two cores with the app.
  proof     the Equivalence view on the classroom specs (issue 9): ResNeXt-29 (8x64d) at 32x32,
            and one block of ResNeXt-50 (32x4d).
Targets (issue 8): analytics within 50 ms; all views within 0.7 s (resnext50_32x4d) and
1.5 s (resnext101_64x4d), on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "localhost,127.0.0.1"

from builder import PRESETS, share, views  # noqa: E402

PRESET_NAMES = ("resnext50_32x4d", "resnext101_64x4d")
TARGETS = {"resnext50_32x4d": 0.7, "resnext101_64x4d": 1.5}
SETTLE_S = 4.0  # browser: pause between changes, so each is timed on a quiet page
CACHED = (views.counts, views.block_dot, views.network_dot, views.block_svg,
          views.network_svg, views.summary, views.source)


def clear_caches() -> None:
    for fn in CACHED:
        fn.cache_clear()


def analytics(spec, preset: str) -> None:
    """What the app's `refresh` computes for a valid spec."""
    views.headline(spec)
    views.overview_markdown(spec, views.DEFAULT_BASELINE)
    views.stage_table(spec)
    views.formula_markdown(spec, views.DEFAULT_BASELINE)
    views.stage_choices(spec)
    share.to_query(spec, preset, 0)
    spec.to_json(indent=None)


HEAVY = {
    "block graph": lambda spec: views.block_svg(spec, 0),
    "network graph": views.network_svg,
    "summary": lambda spec: views.summary_text(views.summary(spec, 3)),
    "code": views.source,
}


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.0f} ms" if seconds >= 0.01 else f"{seconds * 1e3:.2f} ms"


def bench_compute(repeats: int) -> list[dict]:
    rows = []
    warm = PRESETS["resnext29_8x64d"]  # first calls import torchinfo, inspect the sources
    for fn in HEAVY.values():
        fn(warm)
    for name in PRESET_NAMES:
        times = {key: [] for key in ("analytics", *HEAVY, "sequential", "parallel")}
        for r in range(repeats):
            spec = PRESETS[name].replace(cardinality=PRESETS[name].cardinality // 2 + r)
            clear_caches()
            start = time.perf_counter()
            analytics(spec, name)
            times["analytics"].append(time.perf_counter() - start)
            total = 0.0
            for key, fn in HEAVY.items():
                start = time.perf_counter()
                fn(spec)
                took = time.perf_counter() - start
                times[key].append(took)
                total += took
            times["sequential"].append(total)
            clear_caches()
            with ThreadPoolExecutor(len(HEAVY)) as pool:
                start = time.perf_counter()
                list(pool.map(lambda fn, spec=spec: fn(spec), HEAVY.values()))
                times["parallel"].append(time.perf_counter() - start)
        rows.append({"preset": name, **{k: statistics.median(v) for k, v in times.items()}})
    return rows


CLASSROOM = (("resnext29_8x64d", "network", 0), ("resnext50_32x4d", "block", 0))


def bench_proof() -> list[dict]:
    """The Equivalence view on the classroom specs: the proof (three forms, float64 and
    float32, eval mode, batch 1) and the timing contrast, with the estimate shown first."""
    from builder.proof import estimate_seconds, prove

    rows = []
    for name, scope, stage in CLASSROOM:
        spec = PRESETS[name]
        estimate = estimate_seconds(spec, scope, stage)
        start = time.perf_counter()
        result = prove(spec, scope, stage)
        total = time.perf_counter() - start
        worst = {r["dtype"]: max(x["max_abs_diff"] for x in result.rows
                                 if x["dtype"] == r["dtype"]) for r in result.rows}
        rows.append({"what": f"{spec.name}, {scope}" + (f" (conv{stage + 2})"
                                                         if scope == "block" else ""),
                     "size": spec.image_size, "estimate": estimate, "proof": result.seconds,
                     "total": total, "ok": result.ok, "worst": worst,
                     "forms": [t.median_ms for t in result.timings]})
    return rows


def bench_api(url: str, repeats: int) -> list[dict]:
    from gradio_client import Client
    from test_app import controls

    client = Client(url, verbose=False)
    rows = []

    def change(spec, name) -> tuple[float, float]:
        start = time.perf_counter()
        out = client.predict(*controls(spec, preset=name), api_name="/analyze")
        first = time.perf_counter() - start
        spec_json = out[3]
        jobs = [client.submit(spec_json, "resnet50", api_name="/overview"),
                client.submit(spec_json, 0, api_name="/block_graph"),
                client.submit(spec_json, api_name="/network_graph"),
                client.submit(spec_json, 3, api_name="/summary"),
                client.submit(spec_json, api_name="/code")]
        for job in jobs:
            job.result()
        return first, time.perf_counter() - start

    cold = change(PRESETS["resnext50_32x4d"].replace(cardinality=7), "resnext50_32x4d")
    rows.append({"preset": "resnext50_32x4d, first change after start-up (cold)",
                 "analytics": cold[0], "all views": cold[1]})
    for name in PRESET_NAMES:
        first, everything = [], []
        for r in range(repeats):
            spec = PRESETS[name].replace(cardinality=PRESETS[name].cardinality // 2 + 1 + r)
            analytics_s, all_s = change(spec, name)
            first.append(analytics_s)
            everything.append(all_s)
        rows.append({"preset": name, "analytics": statistics.median(first),
                     "all views": statistics.median(everything)})
    return rows


# Timed inside the page: from the input event of the cardinality box to the DOM mutation that
# shows the new number in each view (Playwright's own polling would add up to hundreds of ms).
# Every tab has been opened once before, so that its components are mounted and follow.
VIEWS = {  # name -> (CSS selector, text that shows the new spec there)
    "headline": ("#headline", "{params} parameters"),
    # the Overview's totals; its per-stage table comes in the same event, but a hidden
    # Dataframe draws its rows only when its tab is shown, so the totals are what is watched
    "overview": ("#overview", "{params}"),
    "block graph": ("#block-svg", "groups={c} "),
    "network graph": ("#network-svg", "{name}"),
    "summary": ("#summary-totals", "{params}"),
    "code": ("#code", "{name}, form ("),  # the first line: the editor draws only what is seen
}
WATCH_JS = """(watch) => {
  // one observer per view, on that view's node only: a view's check reads only its own text,
  // so watching the big drawings costs the headline's timing nothing
  window.__result = null;
  const seen = {};
  window.__seen = seen;
  let t0 = null;
  document.querySelector('#cardinality input').addEventListener(
    'input', () => { t0 = performance.now(); }, {once: true, capture: true});
  for (const [name, selector, text] of watch) {
    const node = document.querySelector(selector);
    const observer = new MutationObserver(() => {
      if (t0 === null || !node.textContent.includes(text)) return;
      seen[name] = performance.now() - t0;
      observer.disconnect();
      if (Object.keys(seen).length === watch.length) window.__result = seen;
    });
    observer.observe(node, {subtree: true, childList: true, characterData: true,
                            attributes: true});
  }
}"""


def bench_browser(url: str, repeats: int) -> list[dict]:
    from playwright.sync_api import expect, sync_playwright
    from test_browser import ARGS, CHROMIUM

    from builder import count_params

    rows = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for name in PRESET_NAMES:
            page.goto(f"{url}?preset={name}")
            expect(page.locator("#headline")).to_contain_text(PRESETS[name].name, timeout=60_000)
            for tab in ("Overview", "Network", "Summary", "Code", "Block"):  # mount each view
                page.get_by_role("tab", name=tab, exact=True).click()
            expect(page.locator("#block-svg svg")).to_be_visible(timeout=60_000)
            times = {view: [] for view in VIEWS}
            times["all views"] = []
            for r in range(repeats):
                time.sleep(SETTLE_S)  # let the last change's views finish: one change at a time
                c = PRESETS[name].cardinality // 2 + 11 + r
                spec = PRESETS[name].replace(cardinality=c)
                fill = {"params": f"{count_params(spec):,}", "c": c, "name": spec.name}
                watch = [[view, selector, text.format(**fill)]
                         for view, (selector, text) in VIEWS.items()]
                page.evaluate(WATCH_JS, watch)
                page.locator("#cardinality input").fill(str(c))
                try:
                    page.wait_for_function("window.__result !== null", timeout=60_000)
                except Exception:
                    seen = page.evaluate("window.__seen || {}")
                    missing = [view for view in VIEWS if view not in seen]
                    raise RuntimeError(f"{name}, C={c}: no update seen in {missing}") from None
                seen = page.evaluate("window.__result")
                for view in VIEWS:
                    times[view].append(seen[view] / 1e3)
                times["all views"].append(max(seen.values()) / 1e3)
            rows.append({"preset": name, **{k: statistics.median(v) for k, v in times.items()}})
        browser.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--browser", action="store_true", help="also time chromium")
    parser.add_argument("--no-api", action="store_true", help="only the in-process timings")
    args = parser.parse_args()
    print(f"# bench_app: {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}, median of {args.repeats}")

    print("\ncompute (in process, caches cleared):")
    print("| preset | analytics | block graph | network graph | summary | code | "
          "all views, sequential | all views, parallel (as the app) | target |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in bench_compute(args.repeats):
        print(f"| {row['preset']} | {ms(row['analytics'])} | {ms(row['block graph'])} | "
              f"{ms(row['network graph'])} | {ms(row['summary'])} | {ms(row['code'])} | "
              f"{ms(row['sequential'])} | {ms(row['parallel'])} | "
              f"{TARGETS[row['preset']]:.1f} s |")

    print("\nequivalence view (classroom specs, CPU, batch 1, eval; proof then timing "
          "contrast):")
    print("| what | input | estimate shown first | proof | proof + contrast | max abs diff "
          "float64 / float32 | median ms (a) / (b) / (c) | equal |")
    print("| --- | ---: | ---: | ---: | ---: | --- | --- | --- |")
    for row in bench_proof():
        a, b, c = row["forms"]
        print(f"| {row['what']} | {row['size']}×{row['size']} | {row['estimate']:.1f} s | "
              f"{row['proof']:.1f} s | {row['total']:.1f} s | {row['worst']['float64']:.1e} / "
              f"{row['worst']['float32']:.1e} | {a:,.1f} / {b:,.1f} / {c:,.1f} | "
              f"{'yes' if row['ok'] else 'NO'} |")
    if args.no_api:
        return

    from test_app import free_port, launch

    port = free_port()
    start = time.perf_counter()
    process = launch(port)
    print(f"\napp start-up (python app.py until the page answers): "
          f"{time.perf_counter() - start:.1f} s")
    url = f"http://127.0.0.1:{port}/"
    try:
        print("\napi (gradio_client, change -> result):")
        print("| preset | analytics (/analyze) | all views (overview + 4 views together) |")
        print("| --- | ---: | ---: |")
        for row in bench_api(url, args.repeats):
            print(f"| {row['preset']} | {ms(row['analytics'])} | {ms(row['all views'])} |")
        if args.browser:
            print("\nbrowser (chromium, typing a new C -> each view shows it):")
            names = [*VIEWS, "all views"]
            print("| preset | " + " | ".join(names) + " | target (all) |")
            print("| --- |" + " ---: |" * (len(names) + 1))
            for row in bench_browser(url, args.repeats):
                print(f"| {row['preset']} | " + " | ".join(ms(row[n]) for n in names)
                      + f" | {TARGETS[row['preset']]:.1f} s |")
    finally:
        process.terminate()
        process.wait(10)


if __name__ == "__main__":
    main()
