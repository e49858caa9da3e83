"""The page, one module per tab (the only package that imports Gradio).

    ui.common      the output folder, the device lock, spec parsing, messages, Page (names ->
                   components, and events wired by name)
    ui.controls    the left column: preset, the spec's controls (from builder.spec's field
                   metadata), keep-complexity, baseline, share
    ui.overview .. ui.learn   one tab each: layout(page), wire(page), plain handlers
    ui.page        the header, the tabs (TABS), build_demo()

Handlers are module-level functions: inputs in, a dict {output name: value} out (names left
out stay as they are on the page). Tests call them directly, without a server.
"""

from . import common  # first: it sets Gradio's environment before Gradio is imported

__all__ = ["common"]
