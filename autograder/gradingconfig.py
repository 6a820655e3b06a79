"""GradingConfig: the grading settings, one object for every front door.

Read once from the course's ``nbgrader_config.py`` (``c.GradingConfig.seed = 7``) by both doors:
plain ``nbgrader autograde`` (SandboxAutograde reads it from the configuration nbgrader loaded)
and ``autograder autograde / grade / gradescope`` (which load the same file); a command-line flag
overrides the file for that run. The settings used are written into every results.json
(``extra_data.settings``), so that a grade says how it was obtained.

Before this object existed, ``c.SandboxAutograde.seed``, ``cell_seconds``, ``submission_seconds``
and ``unsafe_no_sandbox`` were read by the nbgrader door only; those names are still honoured
(``c.GradingConfig`` wins where both are set).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from traitlets import Bool, Enum, Float, Integer
from traitlets.config import Config, Configurable

from autograder import sandbox
from autograder.plan import DEFAULT_SEED

MB = 1 << 20
_DEFAULTS = sandbox.Limits()
LEGACY = ("seed", "cell_seconds", "submission_seconds", "unsafe_no_sandbox")  # once c.SandboxAutograde.*


class ConfigError(ValueError):
    """The course's nbgrader_config.py cannot be read, or a setting is out of range."""


class GradingConfig(Configurable):
    seed = Integer(DEFAULT_SEED, help="Seed of the hidden checks (recorded in the results).").tag(config=True)
    cell_seconds = Float(_DEFAULTS.cell_seconds, help="Time limit of one cell, in seconds.").tag(config=True)
    submission_seconds = Float(_DEFAULTS.submission_seconds,
                               help="Time limit of a whole submission (both runs), in seconds.").tag(config=True)
    memory_mb = Integer(_DEFAULTS.memory_bytes // MB, help="Memory of one submission's sandbox, in MiB, where a "
                        "memory cgroup can be made (else each process's address space is limited).").tag(config=True)
    address_space_mb = Integer(_DEFAULTS.address_space_bytes // MB,
                               help="Address space of each process of a submission, in MiB (RLIMIT_AS; private "
                                    "data where the GPU is shown).").tag(config=True)
    cpus = Float(_DEFAULTS.cpus, help="CPU time per wall-clock second of one submission (cgroup cpu.max).").tag(
        config=True)
    cpu_seconds = Integer(_DEFAULTS.cpu_seconds, help="CPU seconds of each process (RLIMIT_CPU).").tag(config=True)
    processes = Integer(_DEFAULTS.processes, help="Processes and threads of one submission.").tag(config=True)
    gpu = Enum(["auto", "off"], "auto", help="auto: submissions see this machine's GPU where it has one; off: "
                                             "never.").tag(config=True)
    workers = Integer(0, help="Submissions graded at once by `autograder autograde` (0: one per CPU).").tag(
        config=True)
    unsafe_no_sandbox = Bool(False, help="Run submissions WITHOUT isolation (only on a trusted machine).").tag(
        config=True)

    def limits(self) -> sandbox.Limits:
        return sandbox.Limits(cell_seconds=self.cell_seconds, submission_seconds=self.submission_seconds,
                              memory_bytes=self.memory_mb * MB, address_space_bytes=self.address_space_mb * MB,
                              cpus=self.cpus, cpu_seconds=self.cpu_seconds, processes=self.processes,
                              gpu=self.gpu != "off")

    def settings(self) -> dict[str, Any]:
        """What a results.json records (the seed is recorded on its own)."""
        return settings_of(self.limits(), self.unsafe_no_sandbox)

    def check(self) -> "GradingConfig":
        for name in ("cell_seconds", "submission_seconds", "memory_mb", "address_space_mb", "cpus", "cpu_seconds",
                     "processes"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"GradingConfig.{name} must be greater than 0 (it is {getattr(self, name)}).")
        if self.workers < 0:
            raise ConfigError(f"GradingConfig.workers must be 0 (one per CPU) or more (it is {self.workers}).")
        return self


def settings_of(limits: sandbox.Limits, unsafe: bool) -> dict[str, Any]:
    """The settings a submission was graded with, in GradingConfig's names (results.json's
    extra_data.settings)."""
    return {"cell_seconds": limits.cell_seconds, "submission_seconds": limits.submission_seconds,
            "memory_mb": limits.memory_bytes // MB, "address_space_mb": limits.address_space_bytes // MB,
            "cpus": limits.cpus, "cpu_seconds": limits.cpu_seconds, "processes": limits.processes,
            "gpu": "auto" if limits.gpu else "off", "unsafe_no_sandbox": bool(unsafe)}


def from_config(config: Config | None, **overrides: Any) -> GradingConfig:
    """The settings of a loaded traitlets configuration, then the overrides that are not None (flags)."""
    merged = Config()
    if config is not None:
        if "SandboxAutograde" in config:
            old = config["SandboxAutograde"]
            merged.GradingConfig.update({k: old[k] for k in LEGACY if k in old})
        if "GradingConfig" in config:
            merged.GradingConfig.update(config["GradingConfig"])
    try:
        settings = GradingConfig(config=merged)
        for name, value in overrides.items():
            if value is not None:
                setattr(settings, name, value)
    except Exception as exc:  # a traitlets TraitError: the wrong type of value
        raise ConfigError(f"a grading setting has a wrong value: {exc}") from None
    return settings.check()


def load(config_file: Path, **overrides: Any) -> GradingConfig:
    """The settings of a course's nbgrader_config.py (defaults where it has none), then the overrides."""
    if not config_file.exists():
        return from_config(None, **overrides)
    from traitlets.config.loader import PyFileConfigLoader

    try:
        config = PyFileConfigLoader(config_file.name, path=str(config_file.parent)).load_config()
    except Exception as exc:
        raise ConfigError(f"{config_file} could not be read ({type(exc).__name__}: {exc}); fix it, or run "
                          "from another course directory.") from None
    return from_config(config, **overrides)
