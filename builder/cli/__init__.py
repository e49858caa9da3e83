"""python -m builder SUBCOMMAND [spec options]

Spec options are shared by every subcommand: a base (--preset or --config) and overrides.
Bad options exit with status 2 and a one-line message, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from collections.abc import Callable

from ..complexity import network_counts
from ..guards import Limits
from ..network import describe
from ..spec import PRESETS, ResNeXtSpec, SpecError, spec_fields


class UsageError(Exception):
    """A bad command line: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints usage + message; we want one line
        raise UsageError(f"{self.prog}: {message}")


# The ranges of the whole-number options that are not spec fields. A value outside is refused
# by the parser (exit 2, one line), before anything is built or seeded: torch's generators
# take a seed of at most 64 bits, and an iteration count of 10**23 would never end.
SEED_RANGE = (0, 2**63 - 1)
CHECK_BATCH_RANGE = (1, Limits().max_batch_size)  # check builds on the CPU, in float64
TIME_BATCH_RANGE = (1, Limits.for_device("cuda").max_batch_size)
WARMUP_RANGE = (0, 10_000)
ITERS_RANGE = (1, 100_000)


def _shown(text: str, value: int | None) -> str:
    """The value as the message shows it: a number as it is, anything else quoted; cut to
    about 40 characters (a 5000-digit number stays one short line)."""
    shown = str(value) if value is not None else repr(text)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def whole_number(flag: str, lo: int, hi: int) -> Callable[[str], int]:
    """An argparse `type`: a whole number from lo to hi, else a UsageError naming the flag,
    the value and the range (argparse would only say "invalid int value")."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:  # not a number, or over Python's 4300-digit limit
            value = None
        if value is None or not lo <= value <= hi:
            raise UsageError(f"{flag}: {_shown(text, value)} is not allowed; expected a whole "
                             f"number from {lo} to {hi}")
        return value

    parse.__name__ = "int"
    return parse


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"depths: {text!r} is not allowed; expected whole numbers separated by commas, "
            "e.g. 3,4,6,3") from None


def add_spec_options(parser: argparse.ArgumentParser) -> None:
    """--preset, --config, then one option per spec field, from the field's metadata."""
    group = parser.add_argument_group("spec")
    group.add_argument("--preset", choices=sorted(PRESETS), help="start from a named network")
    group.add_argument("--config", metavar="FILE.json", help="start from a JSON spec")
    for info in spec_fields():
        flags = [info.option] + ([info.flag] if info.flag else [])
        if info.kind == "bool":
            group.add_argument(*flags, action=argparse.BooleanOptionalAction, default=None,
                               help=f"{info.help} (or not, overriding --preset or --config)")
        elif info.kind == "choice":
            group.add_argument(*flags, choices=info.values, help=info.help)
        else:
            group.add_argument(*flags, type=_int_list if info.kind == "depths" else int,
                               help=info.help)


def spec_from_args(args: argparse.Namespace) -> ResNeXtSpec:
    """The spec the options describe: preset or config (or the default), then overrides."""
    if args.preset and args.config:
        raise UsageError("--preset and --config both name a base spec; give one")
    spec = PRESETS[args.preset] if args.preset else ResNeXtSpec()
    if args.config:
        spec = ResNeXtSpec.from_json(read_config(args.config))
    overrides = {info.name: getattr(args, info.name) for info in spec_fields()
                 if getattr(args, info.name, None) is not None}
    return spec.replace(**overrides) if overrides else spec


MAX_CONFIG_BYTES = 1 << 20


def read_config(path: str) -> bytes:
    """The file's first MAX_CONFIG_BYTES, or UsageError at once where it cannot be read or is
    not a regular file: open() on a FIFO blocks until a writer comes, /dev/zero never ends.
    Opened with O_NONBLOCK, and checked again once open, so that a file swapped for a FIFO
    between the two checks cannot block either."""
    def refuse(reason: str) -> UsageError:
        return UsageError(f"--config: cannot read {path!r}: {reason}")

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise refuse("not a regular file")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (OSError, ValueError) as exc:  # ValueError: a NUL character in the path
        raise refuse(getattr(exc, "strerror", None) or str(exc)) from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise refuse("not a regular file")
        try:
            return handle.read(MAX_CONFIG_BYTES)
        except OSError as exc:
            raise refuse(exc.strerror or str(exc)) from None


def _fmt(n: int) -> str:
    return f"{n:,}"


def info_table(spec: ResNeXtSpec) -> str:
    counts = network_counts(spec)
    rows = [("stage", "blocks", "in", "width C*d", "d", "out", "size", "params", "MACs")]
    stem_size = f"{spec.image_size}->{counts.stages[0].plan.size_in}" if counts.stages else ""
    rows.append(("stem", "", str(spec.in_channels), "", "", str(spec.stem_width), stem_size,
                 _fmt(counts.stem.params), _fmt(counts.stem.macs)))
    for stage in counts.stages:
        p = stage.plan
        rows.append((f"{p.paper_name} ({p.name})", str(p.depth), str(p.in_channels),
                     str(p.width), str(p.path_width), str(p.out_channels),
                     f"{p.size_in}->{p.size_out}", _fmt(stage.total.params),
                     _fmt(stage.total.macs)))
    rows.append(("head (pool, fc)", "", "", "", "", str(spec.num_classes), "1",
                 _fmt(counts.head.params), _fmt(counts.head.macs)))
    rows.append(("total", str(sum(spec.depths)), "", "", "", "", "", _fmt(counts.params),
                 _fmt(counts.macs)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for k, row in enumerate(rows):
        cells = [c.ljust(w) if i == 0 else c.rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells))
        if k == 0 or k == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cmd_info(spec: ResNeXtSpec, args) -> int:
    counts = network_counts(spec)
    if args.json:
        stages = [{"name": s.plan.name, "blocks": s.plan.depth, "in_channels": s.plan.in_channels,
                   "width": s.plan.width, "path_width": s.plan.path_width,
                   "out_channels": s.plan.out_channels, "size_in": s.plan.size_in,
                   "size_out": s.plan.size_out, "params": s.total.params, "macs": s.total.macs}
                  for s in counts.stages]
        print(json.dumps({"name": spec.name, "spec": spec.to_dict(), "params": counts.params,
                          "macs": counts.macs, "flops": counts.total.flops, "stages": stages,
                          "notes": describe(spec)}, indent=2))
        return 0
    print("\n".join(describe(spec)))
    print()
    print(info_table(spec))
    print(f"\nparams {_fmt(counts.params)}   multiply-adds {counts.macs / 1e9:.2f} G "
          f"(FLOPs = 2 x MACs = {counts.total.flops / 1e9:.2f} G) at {spec.image_size}x"
          f"{spec.image_size}")
    return 0


def cmd_check(spec: ResNeXtSpec, args) -> int:
    from ..convert import check_equivalence
    from ..guards import check
    from ._weights import spec_and_weights

    spec, state, label = spec_and_weights(spec, args)
    check(spec, batch_size=args.batch, dtype_bytes=8)  # float64: refuse before building
    rows = check_equivalence(spec, batch_size=args.batch, seed=args.seed, state_dict=state)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{spec.name}: form ({spec.form}) converted to the other forms, one random "
              f"batch of {args.batch} at {spec.image_size}x{spec.image_size}, {label}")
        print(f"{'form':>4}  {'dtype':>7}  {'mode':>5}  {'max |diff|':>10}  {'rel error':>9}  "
              f"{'bound':>9}  ok  why")
        for r in rows:
            print(f"{r['form']:>4}  {r['dtype']:>7}  {r['mode']:>5}  {r['max_abs_diff']:10.2e}  "
                  f"{r['rel_error']:9.2e}  {r['bound']:9.2e}  {'yes' if r['ok'] else 'NO ':3}"
                  f" {r['bound_text']}")
        print(f"bound: {rows[0]['why']}" if rows else "")
    return 0 if all(r["ok"] for r in rows) else 1


def _add_weights(p, help_text):
    from ._weights import add_weights_option

    add_weights_option(p, help_text)


# name -> (help, add_arguments, run). Later modules register their own subcommands here.
Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[..., int]]
COMMANDS: dict[str, Command] = {
    "info": ("per-stage table of channels, sizes, params and multiply-adds",
             lambda p: p.add_argument("--json", action="store_true"), cmd_info),
    "check": ("convert to the other forms and print the max |difference| per form and dtype",
              lambda p: (p.add_argument("--batch", type=whole_number("--batch",
                                                                    *CHECK_BATCH_RANGE),
                                        default=4),
                         p.add_argument("--seed", type=whole_number("--seed", *SEED_RANGE),
                                        default=0),
                         p.add_argument("--json", action="store_true"),
                         _add_weights(p, "run on these weights, not random ones")), cmd_check),
}


# Each of these modules holds one subcommand: HELP, add_arguments(parser), run(spec, args).
from . import convert, export, graph, inspect, profile, summary, time  # noqa: E402

for _module in (time, profile, graph, summary, export, inspect, convert):
    COMMANDS[_module.__name__.rsplit(".", 1)[-1]] = (_module.HELP, _module.add_arguments,
                                                     _module.run)


def make_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(prog="python -m builder",
                     description="Build, count, draw and export ResNeXt networks.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (help_text, add_arguments, _) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        add_spec_options(command)
        add_arguments(command)
    return parser


class Terminated(SystemExit):
    """SIGTERM, raised in the main thread: the run unwinds (finally blocks, torch's threads
    joined as at any exit) instead of dying inside torch ("terminate called without an active
    exception")."""


def _terminate(signum, frame):
    raise Terminated(128 + signum)


def _on_sigterm():
    """Install _terminate for SIGTERM (from the main thread only; elsewhere, leave it)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _terminate)


def console() -> int:
    """`python -m builder` and the `resnext-builder` script: one command in a process of its
    own, whose imports never need collecting (builder.memory.freeze_long_lived)."""
    from ..memory import freeze_long_lived

    freeze_long_lived()
    return main()


def main(argv: list[str] | None = None) -> int:
    import signal

    previous = _on_sigterm()
    try:
        args = make_parser().parse_args(argv)
        spec = spec_from_args(args)
        return COMMANDS[args.command][2](spec, args)
    except Terminated as exc:
        print("error: stopped by SIGTERM", file=sys.stderr)
        return exc.code
    except (UsageError, SpecError) as exc:
        # one line whatever the user typed: argparse quotes some arguments as they are
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(exc))
        print(f"error: {text}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `python -m builder info | head`
        sys.stderr.close()
        return 0
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
