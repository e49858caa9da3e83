"""What every tab shares: the output folder and its downloads, the device lock, parsing a spec
from the controls or from JSON, the messages, and `Page`, which wires events by name."""

from __future__ import annotations

import atexit
import functools
import hashlib
import html
import inspect
import os
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Downloads are written here and nowhere else; Gradio may serve only this folder. Gradio's
# own copies of what it serves (its cache) go inside it too, so that one folder holds every
# file the app makes, and removing it at exit (SIGTERM included) leaves nothing behind.
OUTPUT_DIR = Path(tempfile.mkdtemp(prefix="resnext-builder-"))
atexit.register(shutil.rmtree, OUTPUT_DIR, ignore_errors=True)
os.environ["GRADIO_TEMP_DIR"] = str(OUTPUT_DIR / "gradio")
for _var in ("NO_PROXY", "no_proxy"):  # Gradio checks its own server through any proxy
    if "127.0.0.1" not in os.environ.get(_var, ""):
        os.environ[_var] = ",".join(h for h in ("localhost,127.0.0.1", os.environ.get(_var))
                                    if h)

import gradio as gr  # noqa: E402

from builder import views  # noqa: E402
from builder.spec import ResNeXtSpec, SpecError, spec_fields  # noqa: E402

DEFAULT_PRESET = "resnext50_32x4d"
OUTPUT_MAX_AGE_S = 3600  # downloads older than this are removed (Gradio's cache: delete_cache)
MAX_RUN_S = 300.0  # a timing run or proof is stopped after this long
ESTIMATE_SLACK = 3.0  # ...and one estimated above 3x that is not started at all
# Timing runs and proofs hold this while they run. Gradio's queue ("device", one at a time)
# orders them and shows each user its place; the lock covers what the queue cannot: a run
# whose client cancelled goes on in its worker thread after Gradio has freed the slot, and
# the next run must not measure beside it.
DEVICE_LOCK = threading.Lock()

# Event settings. Fast events skip the queue (a plain HTTP call): the analytics take a few
# milliseconds, and the queue's round trips would cost more than that.
FAST = {"show_progress": "hidden", "queue": False}
HEAVY = {"show_progress": "minimal", "concurrency_limit": 2, "trigger_mode": "always_last"}
# Timing and the proof share one queue per server ("device"): one run at a time, and the
# queue shows each waiting user its position. One queue for the CPU and every GPU: a GPU
# timing needs the host's cores to launch its kernels, so a CPU run beside it would skew it.
DEVICE = {"concurrency_limit": 1, "concurrency_id": "device", "show_progress": "full"}


# -- the spec from the page ----------------------------------------------------------------

def whole(value):
    """A Number control's value as an int where it is one (the spec rejects anything else)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def spec_kwargs(names, values) -> dict:
    """The controls' values (for the fields `names`) as ResNeXtSpec keywords; a bad depths
    text raises SpecError naming `depths`."""
    kinds = {info.name: info.kind for info in spec_fields()}
    out = {}
    for name, value in zip(names, values, strict=True):
        kind = kinds[name]
        out[name] = (views.parse_depths(value) if kind == "depths" else bool(value)
                     if kind == "bool" else whole(value) if kind == "int" else value)
    return out


# -- user-supplied text shown as text ----------------------------------------------------------

# `_` inside a word (batch_size) makes no emphasis and stays as it is
_MD_SPECIAL = re.compile(r"([\\`*\[\]!#|~$@]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
_AUTOLINK = re.compile(r"(?i)\b(https?|ftp|mailto|file|data|javascript)(:)|\b(www)(\.)")


def md_text(text) -> str:
    """Any text (a message that echoes what a user typed, a link or a file) as Markdown that
    renders exactly that text: HTML is escaped (no tag, no image fetched) and Markdown's own
    syntax is backslash-escaped (no link, image, emphasis or code; no bare URL autolinked)."""
    out = _MD_SPECIAL.sub(r"\\\1", str(text))
    out = _AUTOLINK.sub(lambda m: (f"{m[1]}\\:" if m[1] else f"{m[3]}\\."), out)
    return html.escape(out, quote=False)


def error_text(text) -> str:
    """A gr.Error's message: Gradio's toast shows it as HTML, so HTML is escaped."""
    return html.escape(str(text), quote=False)


def user_error(exc: Exception, title: str) -> gr.Error:
    return gr.Error(error_text(exc), title=title)


def parse_spec_json(spec_json: str) -> ResNeXtSpec:
    """The page's spec (JSON text) or gr.Error naming the bad field."""
    try:
        return ResNeXtSpec.from_json(spec_json)
    except SpecError as exc:
        raise user_error(exc, "Invalid spec") from None


def clamp_stage(spec: ResNeXtSpec, stage) -> int:
    """The stage index asked for, within the spec's stages (a removed stage: the last one)."""
    return min(max(int(stage or 0), 0), len(spec.depths) - 1)


def not_run(exc: Exception) -> str:
    """A run refused or stopped; a bad setting in the page's words (its label, as typed)."""
    return f"**Not run.** {md_text(views.user_message(exc) if isinstance(exc, SpecError) else exc)}"


def ask_first(prefix: str, what: str, estimate: float, smaller: str) -> dict:
    """The reply to a CPU run estimated over ASK_ABOVE_S: the message and the confirm button."""
    return {f"{prefix}_message": (
                f"**This {what} would take about {estimate:,.0f} s on the CPU** "
                f"(estimated from its multiply-adds). Press *Run anyway* to start it, "
                f"or make it smaller: {smaller}."),
            f"{prefix}_confirm": gr.update(visible=True,
                                           value=f"Run anyway (about {estimate:,.0f} s)")}


def too_long(estimate: float, what: str) -> None:
    """Refuse, even when asked to run anyway, what would hold the device queue far longer than
    MAX_RUN_S (the estimate errs long, up to a few times, so the cap is generous); a run that
    starts is stopped at MAX_RUN_S in any case."""
    if estimate > MAX_RUN_S * ESTIMATE_SLACK:
        raise ValueError(f"this {what} would take about {estimate:,.0f} s (estimated), more "
                         f"than the {MAX_RUN_S * ESTIMATE_SLACK:,.0f} s this page starts (a run "
                         f"is stopped after {MAX_RUN_S:,.0f} s): make it smaller (batch, image "
                         f"size, one block)")


def graph_error(exc: Exception) -> str:
    return f"<p class='graph-error'>{html.escape(str(exc))}</p>"


# -- downloads -------------------------------------------------------------------------------

def slug(spec: ResNeXtSpec) -> str:
    """A file name stem: the network's name and a short hash of its full spec."""
    name = re.sub(r"[^a-z0-9]+", "-", spec.name.lower()).strip("-")
    digest = hashlib.sha1(spec.to_json(indent=None).encode()).hexdigest()[:8]
    return f"{name}-{spec.form}-{digest}"


_last_prune = [0.0]


def prune_outputs(now: float) -> int:
    """Remove downloads older than OUTPUT_MAX_AGE_S from OUTPUT_DIR (at most once a minute),
    so that a long-running server does not fill its disk. `now`: the modification time of
    the file just written (no clock is read here). Returns how many were removed."""
    if now - _last_prune[0] < 60:
        return 0
    _last_prune[0] = now
    removed = 0
    folders = [OUTPUT_DIR] + [Path(e.path) for e in os.scandir(OUTPUT_DIR)
                              if e.is_dir() and e.name != "gradio"]
    for folder in folders:  # the files of each spec's folder (model.py) too
        for entry in os.scandir(folder):
            try:
                if entry.is_file() and now - entry.stat().st_mtime > OUTPUT_MAX_AGE_S:
                    os.remove(entry.path)
                    removed += 1
            except OSError:  # removed by another thread meanwhile
                pass
    return removed


def write_output(name: str, data: bytes | str) -> str:
    """Write a download into the app's output folder (atomically) and return its path."""
    path = OUTPUT_DIR / name  # "slug/model.py": a folder per spec, for a fixed file name
    if not path.exists():  # two sessions may ask for the same file at once: each its own temp
        path.parent.mkdir(exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            out.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
        prune_outputs(path.stat().st_mtime)
    return str(path)


def png_file(spec: ResNeXtSpec, dot: str, name: str) -> str:
    """A graph drawn as PNG into the output folder; gr.Error where Graphviz fails."""
    try:
        data = views.graph_png(dot)
    except RuntimeError as exc:  # GraphvizError
        raise user_error(exc, "Graphviz") from None
    return write_output(f"{slug(spec)}-{name}.png", data)


def browser_secret() -> str:
    """The key Gradio encrypts the pins kept in the browser with. Gradio draws a new one at
    every launch, which would drop every pin at a restart; this one is kept in the user's
    cache folder (created once, readable by the user only), or taken from
    RESNEXT_BUILDER_SECRET. Where neither can be had, a random one: pins last until restart."""
    if os.environ.get("RESNEXT_BUILDER_SECRET"):
        return os.environ["RESNEXT_BUILDER_SECRET"]
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "resnext-builder"
    path = folder / "browser-state-secret"
    try:
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(handle, "w") as out:
                out.write(secrets.token_hex(32))
        return path.read_text().strip() or secrets.token_hex(32)
    except OSError:  # a read-only home, or a race lost to another process: read again
        try:
            return path.read_text().strip() or secrets.token_hex(32)
        except OSError:
            return secrets.token_hex(32)


# -- handlers and events ---------------------------------------------------------------------

def with_signature(fn: Callable, names, doc: str | None = None) -> Callable:
    """`fn` (taking *args) shown to Gradio with these parameter names: its API lists them, and
    Gradio calls it positionally in that order."""
    fn.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names])
    if doc is not None:
        fn.__doc__ = doc
    return fn


def confirmed(fn: Callable, doc: str) -> Callable:
    """`fn` with its `confirmed` argument forced to True: the "Run anyway" endpoints, which
    take the same inputs as the plain ones."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def run_anyway(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.arguments["confirmed"] = True
        return fn(*bound.args, **bound.kwargs)

    run_anyway.__doc__ = doc
    return run_anyway


ACCEPTS: dict[str, tuple] = {}  # elem_id -> values a choice takes besides its choices


def _checked(component, payload, preprocess: Callable):
    """A choice outside the component's choices (and ACCEPTS), refused in one short line:
    Gradio's own refusal echoes the value whole, a megabyte if one is sent."""
    values = [value for _, value in component.choices]
    extra = ACCEPTS.get(component.elem_id, ())
    if (payload is None or payload in values or getattr(component, "allow_custom_value", False)
            or isinstance(payload, list)):  # a multiselect's list: Gradio checks each item
        return preprocess(payload)
    if payload in extra and not isinstance(payload, bool):
        return payload
    allowed = ", ".join(str(v) for v in values + [v for v in extra if v not in values])
    refusal = SpecError(component.label or component.elem_id or "value", payload,
                        f"expected one of {allowed}")  # its value shown as spec errors show it
    raise gr.Error(error_text(refusal), print_exception=False)


def _one_line_refusals() -> None:
    """Every Radio and Dropdown of this process refuses through _checked. Patched on the
    classes, not the instances: Gradio makes a session's own copy of a component (with its
    constructor's arguments) whenever an event updates it, and a subclass would have to
    repeat Gradio's whole constructor signature for its config to carry the label."""
    for cls in (gr.Radio, gr.Dropdown):
        original = cls.preprocess
        if getattr(original, "one_line", False):
            continue

        def preprocess(self, payload, _original=original):
            return _checked(self, payload, lambda value: _original(self, value))

        preprocess.one_line = True
        cls.preprocess = preprocess


_one_line_refusals()


# Gradio 6.31's front end, when an always_last listener was deferred behind its own running
# call, re-dispatches the whole event that triggered it once that call ends, not the one
# listener (Blocks.svelte: `this.queue.has(r.id) && (..., this.dispatch(e))`). With two or
# more queued listeners on one event they re-trigger each other without end: seen on
# spec_json.change, the block, network, summary, code and learn views redrawn every 0.5 s
# under load, and a block picked meanwhile lost. A listener chained with .then is dispatched
# (and re-dispatched) alone, so the queued listeners of this event hang off one no-op.
SHARED_EVENT = "spec_json.change"


def _names(names) -> list[str]:
    return [names] if isinstance(names, str) else list(names)


class Page:
    """The page's components by name, and its events wired by name: a handler returns
    {output name: value}, which `on` hands Gradio as {component: value}."""

    def __init__(self):
        self.components: dict[str, object] = {}
        self.api_names: list[str] = []
        self.shared_listener = None

    def add(self, name: str, component, accepts: Iterable = ()):
        """Name a component. `accepts`: values a Radio or Dropdown takes besides its choices
        (the stage radio's choices follow the spec, but Gradio checks an API call against the
        choices the session last drew)."""
        if name in self.components:
            raise ValueError(f"two components named {name!r}")
        if accepts:
            ACCEPTS[component.elem_id] = tuple(accepts)
        self.components[name] = component
        return component

    def __getitem__(self, name: str):
        return self.components[name]

    def on(self, triggers: str | list[str], fn: Callable | None, inputs=(), outputs=(),
           **settings):
        """Wire `fn` to triggers named "component.event" (e.g. "spec_json.change"). A queued
        always_last handler of SHARED_EVENT is chained after one JS no-op listener of it
        (see SHARED_EVENT); its other triggers, if any, are wired directly."""
        names = _names(triggers)
        if (fn is None or SHARED_EVENT not in names or settings.get("queue") is False
                or settings.get("trigger_mode") != "always_last"):
            return self._wire(names, fn, inputs, outputs, settings)
        rest = [n for n in names if n != SHARED_EVENT]
        direct = self._wire(rest, fn, inputs, outputs, settings) if rest else None
        if direct is not None:  # the API is the direct listener's; the chained one is private
            settings = {**settings, "api_name": None, "api_visibility": "private"}
        elif settings.get("api_name"):
            self.api_names.append(settings["api_name"])
        chained = self._shared_event().then(
            self.by_component(fn), [self[n] for n in _names(inputs)],
            [self[n] for n in _names(outputs)], **settings)
        return direct if direct is not None else chained

    def _wire(self, names: list[str], fn, inputs, outputs, settings: dict):
        events = []
        for trigger in names:
            name, event = trigger.rsplit(".", 1)
            events.append(getattr(self[name], event))
        inputs = [self[n] for n in _names(inputs)]
        outputs = [self[n] for n in _names(outputs)]
        handler = None if fn is None else self.by_component(fn)
        if settings.get("api_name"):
            self.api_names.append(settings["api_name"])
        if len(events) == 1:
            return events[0](handler, inputs, outputs, **settings)
        return gr.on(events, handler, inputs, outputs, **settings)

    def _shared_event(self):
        """The one listener of SHARED_EVENT that its queued handlers hang off."""
        if self.shared_listener is None:
            name, event = SHARED_EVENT.rsplit(".", 1)
            self.shared_listener = getattr(self[name], event)(
                None, None, None, js="() => []", queue=False, show_progress="hidden")
        return self.shared_listener

    def api(self, fn: Callable, api_name: str, **settings) -> None:
        """An endpoint with no component behind it (gr.api): it takes and returns JSON."""
        gr.api(fn, api_name=api_name, **settings)
        self.api_names.append(api_name)

    def by_component(self, fn: Callable) -> Callable:
        """`fn`, returning {component: value} where it returns {name: value}."""
        @functools.wraps(fn)
        def handler(*args, **kwargs):
            out = fn(*args, **kwargs)
            return {self[name]: value for name, value in out.items()}
        return handler
