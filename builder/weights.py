"""Reading and writing weights safely: a state dict of tensors, and nothing else.

`.safetensors` goes through the safetensors library (a header of names, dtypes and shapes, then
raw bytes: nothing in it can run). `.pth`, `.pt` and `.bin` go through
`torch.load(weights_only=True)` only, whose unpickler builds tensors, containers and numbers
and refuses any other global, so a `__reduce__` in the file never runs. The size is checked
with os.stat before a byte is read, and only a regular file is opened (a FIFO would block).

A checkpoint saved by a training script often wraps its state dict ({"state_dict": ...},
{"model": ...}) and prefixes every key with `module.` (DataParallel): both are unwrapped.
Anything else that is not a flat mapping of str -> Tensor is a WeightsError.
"""

from __future__ import annotations

import os
import pickle
import re
import stat
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

MAX_WEIGHTS_BYTES = 1 << 30  # 1 GiB: 3x resnext101_32x8d in float32 (356 MB)
SAFETENSORS_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".pth", ".pt", ".bin")
# keys under which training scripts nest the state dict (torchvision, timm, Lightning, ...)
NESTED_KEYS = ("state_dict", "model", "model_state", "model_state_dict", "net", "weights")
PREFIXES = ("module.",)  # DataParallel / DistributedDataParallel
_MAX_NESTING = 3


class WeightsError(ValueError):
    """A file that is not a readable state dict of tensors. One line, naming the file."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{_name(path)}: {problem}")


def _name(path) -> str:
    text = Path(str(path)).name or str(path)
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= 60 else text[:57] + "..."


def _one_line(text: str, limit: int = 160) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit - 3] + "..."


def check_file(path, max_bytes: int = MAX_WEIGHTS_BYTES) -> os.stat_result:
    """os.stat the path: a regular file, of a known suffix, at most max_bytes. Nothing read."""
    suffix = Path(str(path)).suffix.lower()
    if suffix not in SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES:
        raise WeightsError(path, f"unknown suffix {suffix or '(none)'!r}; expected one of "
                           + ", ".join(SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES))
    try:
        info = os.stat(path)
    except (OSError, ValueError) as exc:  # ValueError: a NUL character in the path
        raise WeightsError(path, f"cannot read it: {getattr(exc, 'strerror', None) or exc}") \
            from None
    if not stat.S_ISREG(info.st_mode):
        raise WeightsError(path, "not a regular file (a directory, FIFO or device is refused)")
    if info.st_size > max_bytes:
        raise WeightsError(path, f"{info.st_size:,} bytes is over the cap of {max_bytes:,} "
                           "bytes")
    return info


def _torch_load(path) -> object:
    try:
        # mmap needs torch's zip format; an older (legacy) file is read without it
        return torch.load(path, map_location="cpu", weights_only=True,
                          mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        wanted = f" ({found.group(1)})" if found else ""
        raise WeightsError(path, f"refused: the pickle asks for a global{wanted}, and only "
                           "tensors, containers and numbers are loaded (weights_only)") from None
    except Exception as exc:  # a corrupt or truncated file: whatever torch raises
        raise WeightsError(path, f"not a readable PyTorch file: {_one_line(exc)}") from None


def unwrap(obj, path="<state dict>") -> dict[str, torch.Tensor]:
    """The flat state dict inside `obj`: nested under NESTED_KEYS (up to 3 deep), with a
    `module.` prefix on every key removed. Anything else is a WeightsError."""
    for _ in range(_MAX_NESTING + 1):
        if not isinstance(obj, Mapping):
            raise WeightsError(path, f"not a state dict: the file holds a "
                               f"{type(obj).__name__}, not a mapping of names to tensors")
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            break
        inner = next((obj[k] for k in NESTED_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            bad = next((k for k, v in obj.items() if not isinstance(v, torch.Tensor)), None)
            if bad is None:
                raise WeightsError(path, "not a state dict: it is empty")
            raise WeightsError(path, f"not a state dict of tensors: {_one_line(repr(bad), 60)} "
                               f"holds a {type(obj[bad]).__name__}")
        obj = inner
    else:
        raise WeightsError(path, f"not a state dict: nested more than {_MAX_NESTING} deep")
    bad_key = next((k for k in obj if not isinstance(k, str)), None)
    if bad_key is not None:
        raise WeightsError(path, f"not a state dict: a key is a {type(bad_key).__name__}")
    return strip_prefix(dict(obj))


def strip_prefix(state: dict) -> dict:
    """Remove a prefix (`module.`) that every key carries."""
    for prefix in PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            return {k[len(prefix):]: v for k, v in state.items()}
    return state


def _safe_open(path):
    from safetensors import safe_open

    try:
        return safe_open(str(path), framework="pt", device="cpu")
    except Exception as exc:  # SafetensorError, or a header that is not JSON
        raise WeightsError(path, f"not a readable safetensors file: {_one_line(exc)}") from None


def read_state_dict(path, max_bytes: int = MAX_WEIGHTS_BYTES) -> dict[str, torch.Tensor]:
    """The state dict in a .safetensors, .pth, .pt or .bin file, on the CPU. Raises
    WeightsError (a ValueError, one line naming the file) for anything else."""
    check_file(path, max_bytes)
    if Path(str(path)).suffix.lower() in SAFETENSORS_SUFFIXES:
        with _safe_open(path) as handle:
            try:
                state = {key: handle.get_tensor(key) for key in handle.keys()}
            except Exception as exc:
                raise WeightsError(path, f"cannot read a tensor: {_one_line(exc)}") from None
        return unwrap(state, path)
    return unwrap(_torch_load(path), path)


def read_shapes(path, max_bytes: int = MAX_WEIGHTS_BYTES) -> dict[str, tuple[int, ...]]:
    """Key -> shape, for inference. A .safetensors file: from its header alone, no tensor
    read. A .pth file: torch.load with mmap (torch's zip format), so tensors stay on disk."""
    check_file(path, max_bytes)
    if Path(str(path)).suffix.lower() in SAFETENSORS_SUFFIXES:
        with _safe_open(path) as handle:
            shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
        if not shapes:
            raise WeightsError(path, "not a state dict: it is empty")
        return strip_prefix(shapes)
    return {k: tuple(v.shape) for k, v in unwrap(_torch_load(path), path).items()}


def save_safetensors(state: Mapping[str, torch.Tensor], path, metadata: dict | None = None):
    """Write a state dict as .safetensors (contiguous CPU copies), with str metadata."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    save_file(tensors, str(path), metadata={k: str(v) for k, v in (metadata or {}).items()})
    return Path(path)
