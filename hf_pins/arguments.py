"""Values from a YAML mapping into a dataclass, typed the way `HfArgumentParser` types the command line.

`HfArgumentParser` already knows, for every dataclass field, the type a value must have, its choices (enums,
`Literal`) and whether it takes a list. YAML gives typed values (numbers, booleans, lists) rather than strings, so each
value goes through the argparse action `HfArgumentParser` built for its field, with two YAML surprises undone (`3e-5`
is read as a string, `no` as false). No second description of the types exists: a field added to a dataclass is
accepted by recipes as it is by the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
import reprlib
import types
import typing
from typing import Any

from transformers import HfArgumentParser
from transformers.hf_argparser import string_to_bool

_short = reprlib.Repr()  # values in messages are bounded: a YAML alias bomb must not be rendered in full
_short.maxlevel, _short.maxlist, _short.maxdict, _short.maxstring, _short.maxother = 2, 4, 4, 60, 60


def short(value: Any) -> str:
    """`repr(value)`, cut to a few elements and characters."""
    return _short.repr(value)


class ValueProblem(ValueError):
    """A value that does not fit its field; the message says what is accepted."""


@functools.cache
def _actions(cls: type) -> dict[str, Any]:
    parser = HfArgumentParser(cls)
    return {f.name: parser._option_string_actions.get(f"--{f.name}") for f in dataclasses.fields(cls) if f.init}


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def init_fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.init]


def _union_args(hint) -> tuple:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _container_kinds(hint) -> set:
    kinds = set()
    for arg in _union_args(hint):
        origin = typing.get_origin(arg) or arg
        if origin in (list, list):
            kinds.add(list)
        if origin in (dict, dict):
            kinds.add(dict)
    return kinds


def describe(cls: type, name: str) -> str:
    """What a field accepts, in words ("a number", "one of steps, epoch, no", "null or a list of strings")."""
    action, hint = _actions(cls)[name], _hints(cls)[name]
    words = []
    if action is not None and action.choices:
        words.append("one of " + ", ".join(str(c) for c in action.choices))
    elif action is not None and action.type is string_to_bool:
        words.append("true or false")
    else:
        base = getattr(action, "type", None)
        noun = {int: "an integer", float: "a number", str: "a string"}.get(base, "a value")
        words.append(f"a list of {noun[noun.index(' ') + 1:]}s" if action is not None and action.nargs == "+" else noun)
    kinds = _container_kinds(hint)
    if dict in kinds:
        words.append("a mapping")
    if list in kinds and not (action is not None and action.nargs == "+"):
        words.append("a list")
    if type(None) in _union_args(hint):
        words.insert(0, "null")
    return " or ".join(words)


def _scalar(action, value):
    if action.type is string_to_bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            return string_to_bool(value)
        raise ValueError
    if action.choices:
        if isinstance(value, bool):  # YAML 1.1 reads `no` / `yes` as booleans
            value = "yes" if value else "no"
        if not isinstance(value, str):
            raise ValueError
        converted = action.type(value)
        if converted not in action.choices and value not in [str(c) for c in action.choices]:
            raise ValueError
        return value
    if isinstance(value, bool):  # never a number, never a string
        raise ValueError
    if action.type is int:
        if not isinstance(value, int):
            raise ValueError
        return value
    if action.type is float:
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads `3e-5` as a string
            return float(value)
        raise ValueError
    if action.type is str:
        if isinstance(value, (int, float)):  # YAML reads `1` or `2.0` (a label, a revision) as a number
            return str(value)
        if not isinstance(value, str):
            raise ValueError
        return value
    return action.type(value) if isinstance(value, str) else value


def convert(cls: type, name: str, value: Any) -> Any:
    """`value` as the field `name` of `cls` takes it; raises `ValueProblem` saying what is accepted."""
    action, hint = _actions(cls)[name], _hints(cls)[name]
    try:
        if value is None:
            if type(None) not in _union_args(hint):
                raise ValueError
            return None
        kinds = _container_kinds(hint)
        if isinstance(value, dict) and dict in kinds:
            return value
        if action is None:
            return value
        if action.nargs == "+":
            if isinstance(value, str):  # one item given alone: `text_columns: text`
                value = [value]
            if not isinstance(value, list):
                raise ValueError
            if not value:
                raise ValueError
            return [_scalar(action, v) for v in value]
        if isinstance(value, list) and list in kinds:
            return [str(v) if not isinstance(v, str) else v for v in value]
        if isinstance(value, (list, dict)):
            raise ValueError
        return _scalar(action, value)
    except ValueProblem:
        raise
    except (ValueError, TypeError, KeyError, argparse.ArgumentTypeError):
        raise ValueProblem(f"expected {describe(cls, name)}, got {short(value)}") from None


def closest(name: str, accepted) -> str:
    """`; did you mean X?` for a near miss, else the empty string."""
    match = difflib.get_close_matches(name, list(accepted), n=1, cutoff=0.6)
    return f"; did you mean {match[0]}?" if match else ""


def from_mapping(cls: type, values: Any, where: str, renamed: dict[str, str] | None = None) -> dict:
    """Check a YAML mapping against `cls`'s fields and convert its values; errors name `where.key`.

    Returns the keyword arguments for `cls(**kwargs)`; `renamed` maps old keys to a sentence naming the new one."""
    from .errors import RecipeError

    if values is None:
        return {}
    if not isinstance(values, dict):
        raise RecipeError(f"{where}: expected a mapping of keys, got {type(values).__name__}")
    accepted = init_fields(cls)
    out = {}
    for key, value in values.items():
        if renamed and key in renamed:
            raise RecipeError(f"{where}.{key}: {renamed[key]}")
        if key not in accepted:
            raise RecipeError(f"{where}.{key}: unknown key{closest(str(key), accepted)}")
        try:
            out[key] = convert(cls, key, value)
        except ValueProblem as exc:
            raise RecipeError(f"{where}.{key}: {exc}") from None
    return out
