"""The settings of a timing run: one frozen TimingSettings, validated once when it is made.

Every check raises TimingSettingError with a message that starts with the field's name (the
CLI prints it as one line and exits 2). Device-dependent defaults (warm-up and timed
iterations per device type) are filled in one place: TimingSettings.resolved().
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ..fold import stage_error
from .devices import _check_dtype, resolve_device
from .errors import TimingSettingError

MODES = ("inference", "train")
# A BN-folded model must agree with the original within these relative errors
# (max |difference| / max |original output|) in the dtype it is timed in.
FOLD_TOLERANCE = {"fp32": 1e-4, "tf32": 1e-2, "bf16": 5e-2, "fp16": 1e-2}
# Defaults for warm-up and timed iterations, per device type.
DEFAULT_WARMUP = {"cpu": 2, "cuda": 10}
DEFAULT_ITERS = {"cpu": 10, "cuda": 50}
TRAIN_FLOP_FACTOR = 3  # forward + backward (about twice the forward): the usual convention


def _check_count(name: str, value, lowest: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        raise TimingSettingError(f"{name}: {value!r} is not allowed; expected a whole number "
                                 f"from {lowest}")


def _check_deadline(deadline_s) -> None:
    if deadline_s is None:
        return
    if isinstance(deadline_s, bool) or not isinstance(deadline_s, (int, float)) or not (
            deadline_s >= 0):  # NaN fails too
        raise TimingSettingError(f"deadline_s: {deadline_s!r} is not allowed; expected None "
                                 "(no limit) or a number of seconds, 0 or more")


def _check_progress(progress) -> None:
    if progress is not None and not callable(progress):
        raise TimingSettingError(f"progress: {progress!r} is not allowed; expected None or a "
                                 "function called with (fraction from 0 to 1, text)")



def _check_flag(name: str, value) -> None:
    if value not in (True, False):
        raise TimingSettingError(f"{name}: {value!r} is not allowed; expected True or False")


def _check_optional_count(name: str, value, lowest: int, none_means: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < lowest):
        raise TimingSettingError(f"{name}: {value!r} is not allowed; expected None "
                                 f"({none_means}) or a whole number from {lowest}")


def _input_shape(value) -> tuple[int, ...] | None:
    """None, or (channels, height, width) of one input as a tuple of whole numbers >= 1."""
    if value is None:
        return None
    try:
        shape = tuple(value)
    except TypeError:
        shape = None
    if (not shape or any(isinstance(n, bool) or not isinstance(n, int) or n < 1
                         for n in shape)):
        raise TimingSettingError(f"input_shape: {value!r} is not allowed; expected None or "
                                 "whole numbers from 1, such as (3, 224, 224)")
    return shape


def _check_device_rules(dev: torch.device, s: TimingSettings) -> None:
    """The settings that this device (or the mode) cannot honour."""
    if s.cuda_graphs and dev.type != "cuda":
        raise TimingSettingError("cuda_graphs: CUDA graphs need a CUDA GPU; they record GPU "
                                 "kernel launches, which the CPU does not have")
    if s.cudnn_benchmark not in (None, True, False):
        raise TimingSettingError(f"cudnn_benchmark: {s.cudnn_benchmark!r} is not allowed; "
                                 "expected None (the default: on, on a GPU), True or False")
    if s.cudnn_benchmark is False and dev.type != "cuda":
        raise TimingSettingError("cudnn_benchmark: False needs a CUDA GPU; cuDNN (and its "
                                 "algorithm search) runs on NVIDIA GPUs only, so there is "
                                 "nothing to turn off on the CPU; leave it unset there")
    if s.fast and s.mode == "train":
        raise TimingSettingError("fast: folding BN into the convolutions holds only for "
                                 "inference (eval-mode BN uses fixed statistics); use "
                                 "mode='inference'")
    if s.cuda_graphs and not s.compile and s.mode == "train" and s.dtype == "fp16":
        raise TimingSettingError("cuda_graphs: fp16 training needs GradScaler, whose dynamic "
                                 "loss scale reads back to the host every step and cannot be "
                                 "captured in a CUDA graph; use bf16, or add compile")


def _check_freeze(s: TimingSettings) -> None:
    _check_flag("freeze", s.freeze)
    if s.freeze and not s.compile:
        raise TimingSettingError("freeze: freezing is a torch.compile (Inductor) setting; "
                                 "add compile")
    if s.freeze and s.mode == "train":
        raise TimingSettingError("freeze: freezing treats the weights as constants, which "
                                 "holds for inference only; use mode='inference'")


@dataclass(frozen=True)
class TimingSettings:
    """Everything time_model needs besides the spec (or model) and the progress callback.
    Frozen and hashable; made only valid (TimingSettingError otherwise) for this machine.

    batch_size: images per iteration. image_size: input height and width; None: the spec's
    (224 for a bare model). device: "auto" (CUDA when available), "cpu", "cuda" or "cuda:N".
    dtype: "fp32" (TF32 off), "tf32" (GPU only), "bf16" or "fp16" (autocast; weights fp32).
    channels_last: model and batch in NHWC. cudnn_benchmark: None (on, on a GPU), True or
    False (GPU only). compile: torch.compile ("reduce-overhead" with cuda_graphs).
    cuda_graphs: replay each step as a CUDA graph (GPU only). mode: "inference" or "train"
    (forward, cross-entropy, backward, SGD step). fast: BN folded into the convolutions,
    checked first. warmup, iters: untimed and timed iterations; None: DEFAULT_WARMUP /
    DEFAULT_ITERS of the device type. seed: the weights, the batch and the labels.
    input_shape: (C, H, W) of one input for a model that is not a network (overrides
    image_size). macs: multiply-adds of one input, for a model without a spec. name: the label
    in tables. cross_check: also time with torch.utils.benchmark.Timer. deadline_s: a hard
    limit in seconds (None: none). freeze: with compile, in inference: Inductor's freezing.
    """

    batch_size: int = 8
    image_size: int | None = None
    device: str = "auto"
    dtype: str = "fp32"
    channels_last: bool = False
    cudnn_benchmark: bool | None = None
    compile: bool = False
    cuda_graphs: bool = False
    mode: str = "inference"
    fast: bool = False
    warmup: int | None = None
    iters: int | None = None
    seed: int = 0
    input_shape: tuple[int, ...] | None = None
    macs: int | None = None
    name: str | None = None
    cross_check: bool = False
    deadline_s: float | None = None
    freeze: bool = False

    def __post_init__(self):
        if isinstance(self.device, torch.device):
            object.__setattr__(self, "device", str(self.device))
        dev = resolve_device(self.device)
        _check_count("batch_size", self.batch_size, 1)
        _check_optional_count("image_size", self.image_size, 1, "the spec's")
        _check_dtype(dev, self.dtype)
        if self.mode not in MODES:
            raise TimingSettingError(f"mode: {self.mode!r} is not allowed; expected inference "
                                     "or train")
        for name in ("channels_last", "compile", "cuda_graphs", "fast", "cross_check"):
            _check_flag(name, getattr(self, name))
        _check_device_rules(dev, self)
        if self.warmup is not None:
            _check_count("warmup", self.warmup, 1 if self.compile else 0)
        if self.iters is not None:
            _check_count("iters", self.iters, 1)
        _check_count("seed", self.seed, 0)
        object.__setattr__(self, "input_shape", _input_shape(self.input_shape))
        _check_optional_count("macs", self.macs, 0, "not known")
        if self.name is not None and not isinstance(self.name, str):
            raise TimingSettingError(f"name: {self.name!r} is not allowed; expected None or "
                                     "a text")
        _check_deadline(self.deadline_s)
        _check_freeze(self)

    @classmethod
    def of(cls, settings: TimingSettings | None = None, **overrides) -> TimingSettings:
        """`settings` (default: the defaults) with `overrides` (field names) put in."""
        if settings is None:
            return cls(**overrides)
        if not isinstance(settings, cls):
            raise TypeError(f"settings: expected a TimingSettings or None, got "
                            f"{type(settings).__name__}")
        return dataclasses.replace(settings, **overrides) if overrides else settings

    @property
    def torch_device(self) -> torch.device:
        return resolve_device(self.device)

    def resolved(self) -> TimingSettings:
        """These settings on this machine: the device resolved ("auto" -> the GPU or "cpu")
        and warmup and iters filled in per device type. The one place such defaults live."""
        dev = self.torch_device
        return dataclasses.replace(
            self, device=str(dev),
            warmup=DEFAULT_WARMUP[dev.type] if self.warmup is None else self.warmup,
            iters=DEFAULT_ITERS[dev.type] if self.iters is None else self.iters)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        if self.input_shape is not None:
            data["input_shape"] = list(self.input_shape)
        return data


def _check_block(spec, block) -> None:
    """A stage of `spec` for time_forms(block=...) and estimate_seconds(block=...)."""
    why = None if block is None else stage_error(spec, block)
    if why is not None:
        raise TimingSettingError(why)
