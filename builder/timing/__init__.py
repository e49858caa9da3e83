"""builder.timing: for this one commit all of it is in runner.py, which the next one splits
by job (settings, devices, clock, stats, peak, runner, results, estimate, api)."""

from . import runner
from .runner import *  # noqa: F403

__all__ = [name for name in dir(runner) if not name.startswith("_")]
