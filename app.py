"""ResNeXt Block Builder in the browser: explore, draw, summarize, export and share a ResNeXt.

    bash scripts/run.sh            # http://127.0.0.1:7860 (GRADIO_SERVER_PORT / _NAME respected)
    .venv/bin/python app.py --port 7861 --share

The entry point. The page is the `ui` package (the only code that imports Gradio): ui.controls
for the left column, one module per tab, ui.page to put them together. Every handler parses
the controls into a ResNeXtSpec, calls `builder`, and formats the result; the numbers come from
`builder.views` (analytic counts, cached per spec), never from a model built for the page.
Changing a control updates the analytics at once; the graphs, the summary and the code follow
as separate events, so the controls never wait for them. Every event has an `api_name`, and
`/build` takes a spec as JSON text and returns everything at once.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from builder.memory import freeze_long_lived
from builder.weights import MAX_WEIGHTS_BYTES
from ui.common import OUTPUT_DIR  # importing ui sets Gradio's environment (temp dir, proxy)
from ui.page import CSS, build_demo, theme

__all__ = ["CSS", "OUTPUT_DIR", "build_demo", "demo", "main", "theme"]

demo = build_demo()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="ResNeXt Block Builder in the browser")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int,
                        default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true",
                        help="also open a public gradio.live link (off by default)")
    args = parser.parse_args(argv)
    # a plain `kill` (SIGTERM) exits through atexit too, which removes OUTPUT_DIR
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    freeze_long_lived()  # the imports and the page: never collected, never walked again
    demo.queue(default_concurrency_limit=2).launch(
        server_name=args.host, server_port=args.port, share=args.share,
        # the largest upload is a checkpoint (capped again before a byte of it is read); a
        # JSON config is read only up to its own 64 KiB
        allowed_paths=[str(OUTPUT_DIR)], max_file_size=MAX_WEIGHTS_BYTES,
        theme=theme(), css=CSS, show_error=False,
        # Gradio's run history keeps every event's inputs and outputs (SVGs, the summary,
        # the source) in the browser's localStorage and rewrites all of it after each event:
        # hundreds of kB after a few changes, ~50 ms of every change's latency. The page's
        # state is its link and the pins; a history of every keystroke is not wanted.
        run_history=False)


if __name__ == "__main__":
    main()
