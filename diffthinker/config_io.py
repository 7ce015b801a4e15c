"""Run configs as nested dataclasses read from YAML plus dotted ``key=value`` overrides, for both training tracks.

The diffusion track (``diffthinker.diffusion.training``) and the MLLM track (``mllm_baselines.config``) each define
their own ``TrainConfig`` tree of dataclasses; this module is the one reader they share:

- ``ConfigSchema(root, error, example)``: ``from_dict`` builds the tree from a nested dict (unknown keys raise an
  error naming the key and the known keys of its section; values are coerced to the field types, see ``coerce``),
  ``apply_overrides`` applies ``a.b.c=value`` overrides (values are YAML; keys are checked against the schema;
  dict-typed fields such as ``model.overrides`` are free-form below their name), ``load`` reads a YAML file,
  applies the overrides, builds and validates.
- ``ConfigError``: the base of the tracks' ``ConfigError`` classes. It is a ``TaskError`` (so a ``ValueError``),
  which the command lines turn into exit code 2 with the message on one line.
- ``add_train_arguments`` / ``config_from_args``: the training command line both tracks take (``--config``,
  ``--resume``, ``--output-dir``, ``--print-config`` and the overrides).

Nothing here imports torch: the ``diffthinker`` command builds its parser from this module without loading a model
library.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generic, Literal, Mapping, Sequence, TypeVar

import yaml

from .tasks.base import TaskError

__all__ = [
    "DIFFUSION_EXAMPLE_OVERRIDES", "ConfigError", "ConfigSchema", "YamlConfig", "add_train_arguments", "coerce",
    "config_from_args", "read_yaml_mapping", "to_plain", "type_name",
]

C = TypeVar("C")


class ConfigError(TaskError):
    """A bad run config: unknown key, wrong type or out-of-range value (the message names the key)."""


# ============================================================================================== values
def type_name(tp: Any) -> str:
    """A field type as error messages show it: ``float``, ``list[str]``, ``int or null``, ``one of 'a', 'b'``."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(type_name(a) for a in args) + " or null"
    if origin in (list, tuple, dict):
        return str(tp).replace("typing.", "")
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp: Any, key: str, error: type[ConfigError] = ConfigError) -> Any:
    """``value`` (as YAML gave it) as the field type ``tp``, else ``error`` naming ``key`` and the expected type.

    Lenient only where YAML is: PyYAML follows YAML 1.1, which reads ``1e-3`` (no dot) as a string, so a float
    (or integral int, ``1e3``) field takes a numeric string; ``none``/``null`` strings are null for optional
    fields; a single scalar for a list field is a one-entry list (``data.levels=maze:8``). A bool is never a number.
    """
    def bad() -> ConfigError:
        return error(f"config key {key!r} = {value!r} has the wrong type; expected {type_name(tp)}")

    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
            raise bad()
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce(value, a, key, error)
            except ConfigError:
                continue
        raise bad()
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise error(f"config key {key!r} = {value!r} is invalid; expected {type_name(tp)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad()
    if tp is int:
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):  # YAML 1.1: "1e3"
            try:
                f = float(value)
            except ValueError:
                raise bad() from None
            if f.is_integer():
                return int(f)
        raise bad()
    if tp is float:
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):  # YAML 1.1: "1e-3"
            try:
                return float(value)
            except ValueError:
                raise bad() from None
        raise bad()
    if tp is str:
        if isinstance(value, (bool, list, dict)) or value is None:
            raise bad()
        return str(value)
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise bad()
        return [coerce(v, inner, f"{key}[{i}]", error) for i, v in enumerate(value)]
    if origin is tuple:
        inner = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(inner):
            raise bad()
        return tuple(coerce(v, t, f"{key}[{i}]", error) for i, (v, t) in enumerate(zip(value, inner)))
    if origin is dict:
        if not isinstance(value, dict):
            raise bad()
        return {str(k): v for k, v in value.items()}
    raise bad()


def to_plain(value: Any) -> Any:
    """Nested dicts/lists/tuples as dicts and lists (``yaml.safe_dump`` refuses tuples such as ``optim.betas``)."""
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


class YamlConfig:
    """Mixin for a root config dataclass: ``to_dict()`` (plain, YAML-safe) and ``to_yaml()`` (field order kept)."""

    def to_dict(self) -> dict[str, Any]:
        return to_plain(dataclasses.asdict(self))  # type: ignore[call-overload]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def read_yaml_mapping(path: str | Path, error: type[ConfigError] = ConfigError) -> dict[str, Any]:
    """The mapping a YAML config file holds (an empty file is ``{}``); ``error`` if missing, invalid or a list."""
    path = Path(path)
    if not path.is_file():
        raise error(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise error(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise error(f"config file {path} must hold a mapping, got {type(data).__name__}")
    return data


# ============================================================================================== schema
@dataclass(frozen=True)
class ConfigSchema(Generic[C]):
    """How one track's config tree is read.

    root: the root dataclass (sections are dataclass-typed fields; dict-typed fields are free-form mappings).
    error: the ConfigError subclass raised (each track keeps its own name for its users).
    example: an override shown in error messages, e.g. ``optim.lr=3e-4``.
    aliases: override keys that stand for another key, e.g. ``{"resume": "checkpoint.resume"}``.
    """

    root: type[C]
    error: type[ConfigError] = ConfigError
    example: str = "optim.lr=3e-4"
    aliases: Mapping[str, str] = field(default_factory=dict)

    def from_dict(self, data: dict[str, Any] | None) -> C:
        """The config tree from a nested dict; unknown keys and bad types raise ``error`` naming the key."""
        return self._build(self.root, data or {}, "")

    def _build(self, cls: type, data: Any, prefix: str) -> Any:
        if not isinstance(data, dict):
            raise self.error(f"config section {prefix.rstrip('.') or '<root>'!r} must be a mapping, got {data!r}")
        hints = typing.get_type_hints(cls)
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = [k for k in data if k not in fields]
        if unknown:
            where = f"in section {prefix.rstrip('.')!r}" if prefix else "at the top level"
            raise self.error(f"unknown config key {prefix + str(unknown[0])!r}; known keys {where}: "
                             f"{sorted(fields)}")
        kwargs = {}
        for name, value in data.items():
            tp = hints[name]
            if dataclasses.is_dataclass(tp):
                kwargs[name] = self._build(tp, value if value is not None else {}, f"{prefix}{name}.")
            else:
                kwargs[name] = coerce(value, tp, prefix + name, self.error)
        try:  # a section's own __post_init__ checks (e.g. FlowConfig's) become config errors naming the section
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise self.error(f"config section {prefix.rstrip('.') or '<root>'!r} is invalid: {exc}") from None

    def set_dotted(self, data: dict[str, Any], key: str, value: Any) -> None:
        """``data[a][b][c] = value`` for ``key = "a.b.c"``, after checking the key against the schema."""
        parts = key.split(".")
        if not all(parts):
            example_key = self.example.partition("=")[0]
            raise self.error(f"override key {key!r} is malformed; expected dotted names such as {example_key}")
        cls: Any = self.root
        node = data
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if cls is None:  # inside a free-form dict (model.overrides, rl.rewards): any key goes
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, {})
                continue
            fields = {f.name for f in dataclasses.fields(cls)}
            if part not in fields:
                where = ".".join(parts[:i])
                raise self.error(f"unknown config key {key!r}; known keys in "
                                 f"{('section ' + repr(where)) if where else 'the top level'}: {sorted(fields)}")
            tp = typing.get_type_hints(cls)[part]
            if last:
                node[part] = value
                return
            if dataclasses.is_dataclass(tp):
                cls = tp
            elif typing.get_origin(tp) is dict:
                cls = None
            else:
                raise self.error(f"config key {'.'.join(parts[:i + 1])!r} is a value, not a section; "
                                 f"cannot set {key!r}")
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]

    def apply_overrides(self, data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
        """``a.b.c=value`` overrides (values parsed as YAML) applied in order to a copy of ``data``."""
        data = copy.deepcopy(data)
        for item in overrides:
            if "=" not in item:
                raise self.error(f"override {item!r} is not of the form key=value (e.g. {self.example})")
            key, _, text = item.partition("=")
            key = key.strip().lstrip("-")
            key = self.aliases.get(key, key)
            try:
                value = yaml.safe_load(text) if text.strip() else None
            except yaml.YAMLError as exc:
                raise self.error(f"override {item!r}: the value is not valid YAML ({exc})") from None
            self.set_dotted(data, key, value)
        return data

    def load(self, path: str | Path | None = None, overrides: Sequence[str] = (), *,
             prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> C:
        """The YAML file's keys (or none when ``path`` is None) <- overrides <- ``prepare`` (a track's own step on
        the nested dict, e.g. merging presets under it), built and checked by the root's ``validate()``."""
        data = read_yaml_mapping(path, self.error) if path is not None else {}
        data = self.apply_overrides(data, overrides)
        if prepare is not None:
            data = prepare(data)
        cfg = self.from_dict(data)
        validate = getattr(cfg, "validate", None)
        return validate() if validate is not None else cfg


# ============================================================================================== command line
#: the diffusion track's override examples, here rather than in ``diffthinker.diffusion.training`` (which imports
#: torch) so that ``diffthinker train diffusion`` and ``training/train_diffusion.py`` show the same help
DIFFUSION_EXAMPLE_OVERRIDES = "optim.lr=3e-4 data.levels=[maze:8] model.overrides.num_layers=6"


def add_train_arguments(p: Any, example_overrides: str, configs: str = "training/configs/*.yaml") -> None:
    """A training command's arguments: ``--config``, ``--resume [latest|PATH]``, ``--output-dir``,
    ``--print-config`` and the ``key=value`` overrides (``example_overrides`` shows a few in ``--help``)."""
    p.add_argument("--config", type=Path, help=f"YAML config ({configs}); defaults when omitted")
    p.add_argument("--resume", nargs="?", const="latest", default=None, metavar="latest|PATH",
                   help="continue from the newest checkpoint in output_dir (or the given checkpoint folder)")
    p.add_argument("--output-dir", help="shorthand for output_dir=...")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help=f"dotted config overrides with YAML values, e.g. {example_overrides}")


def config_from_args(args: Any, load_config: Callable[[Path | None, list[str]], C]) -> C:
    """The config the parsed ``add_train_arguments`` arguments name: ``load_config(args.config, overrides)`` with
    ``--output-dir`` and ``--resume`` turned into their overrides."""
    overrides = list(args.overrides)
    resume = args.resume
    if resume and "=" in resume and not Path(resume).exists():
        # `--resume key=value ...`: the optional value swallowed an override
        overrides.insert(0, resume)
        resume = "latest"
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    if resume:
        overrides.append(f"checkpoint.resume={resume}")
    return load_config(args.config, overrides)
