"""The two errors of builder.timing: a run that failed, and a setting this machine cannot
honour."""


class TimingError(RuntimeError):
    """A timing run that failed: out of memory, a failed compile, a failed fold check."""


class TimingSettingError(ValueError):
    """A setting this machine cannot honour: a GPU-only option on the CPU, no CUDA, bad values."""

