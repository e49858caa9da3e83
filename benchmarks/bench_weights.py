"""Load vs inspect vs convert of a resnext101_32x8d checkpoint (88.8M params, random weights).

    .venv/bin/python benchmarks/bench_weights.py [--preset NAME] [--repeat N]

Writes the checkpoint as .safetensors and .pth in a temporary folder, then times (best of N):
read_shapes (inspect: the header only), read_state_dict (load), infer_spec, the usual way to
open a checkpoint (build_model, initialised, then load_state_dict), and convert_state to each
form (load_into + builder.convert), and prints a table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from builder import PRESETS, build_model  # noqa: E402
from builder.export_weights import convert_state  # noqa: E402
from builder.infer import infer_spec  # noqa: E402
from builder.registry import FORMS  # noqa: E402
from builder.weights import read_shapes, read_state_dict, save_safetensors  # noqa: E402


def best(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="resnext101_32x8d", choices=sorted(PRESETS))
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    spec = PRESETS[args.preset]
    state = build_model(spec).state_dict()
    params = sum(v.numel() for k, v in state.items() if "running" not in k
                 and "num_batches" not in k)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for suffix in (".safetensors", ".pth"):
            path = Path(folder) / f"w{suffix}"
            if suffix == ".safetensors":
                save_safetensors(state, path)
            else:
                torch.save(state, path)
            size = path.stat().st_size
            inspect_s, shapes = best(lambda p=path: read_shapes(p), args.repeat)
            load_s, loaded = best(lambda p=path: read_state_dict(p), args.repeat)
            infer_s, _ = best(lambda s=shapes: infer_spec(s), args.repeat)
            rows.append((suffix, "inspect (read_shapes)", inspect_s, size))
            rows.append((suffix, "load (read_state_dict)", load_s, size))
            rows.append((suffix, "infer_spec", infer_s, size))
            # how a checkpoint is usually opened (torchvision's way): the model built and
            # initialised, then the state loaded into it
            usual_s, _ = best(lambda s=loaded: build_model(spec).load_state_dict(s), args.repeat)
            rows.append((suffix, "build_model + load_state_dict (form c)", usual_s, size))
            for form in FORMS:
                convert_s, _ = best(lambda f=form, s=loaded: convert_state(spec, s, f),
                                    args.repeat)
                rows.append((suffix, f"convert c -> {form}", convert_s, size))
            del loaded
    print(f"{spec.name}: {params:,} params, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, best of {args.repeat}")
    print("| file | step | seconds | file MB |")
    print("| --- | --- | ---: | ---: |")
    for suffix, step, seconds, size in rows:
        print(f"| {suffix} | {step} | {seconds:.3f} | {size / 1e6:.0f} |")


if __name__ == "__main__":
    main()
