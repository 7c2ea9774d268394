"""Rules for config values: each says what a value should be, or None when it is fine. Used by the table
of top-level keys (`avfusion.config_check`) and by the classes that own their settings (`check_fields`),
so a refused value reads the same wherever it is checked."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence

from omegaconf import ListConfig

from avfusion.errors import ConfigError

Rule = Callable[[object], str | None]  # None when the value is fine, else what it should be


def integer(low: int | None = None) -> Rule:
    def rule(value):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            return "a whole number" + (f" >= {low}" if low is not None else "")
        if low is not None and value < low:
            return f"a whole number >= {low}"
        return None
    return rule


def number(low: float | None = None, above: float | None = None, high: float | None = None) -> Rule:
    def rule(value):
        wanted = "a number" + (f" >= {low}" if low is not None else "") + (f" > {above}" if above is not None else "") \
            + (f" <= {high}" if high is not None else "")
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return wanted
        if (low is not None and value < low) or (above is not None and value <= above) or \
                (high is not None and value > high):
            return wanted
        return None
    return rule


def optional(rule: Rule) -> Rule:
    """`rule`, or null."""
    return lambda value: None if value is None else (lambda wanted: wanted and f"{wanted} or null")(rule(value))


def choice(options: Sequence[str]) -> Rule:
    return lambda value: None if value in options else f"one of {list(options)}"


def text(value) -> str | None:
    return None if isinstance(value, str) else "a name"  # e.g. a noise source's


def distinct_pair(value) -> str | None:
    """Two different names (e.g. a contrast's two units)."""
    ok = isinstance(value, (list, tuple, ListConfig)) and len(value) == 2 and all(isinstance(v, str) for v in value) \
        and value[0] != value[1]
    return None if ok else "a pair of two different unit names"


def each(rule: Rule, non_empty: bool = False, example: str = "[a,b]") -> Rule:
    def check(value):
        if not isinstance(value, (list, tuple, ListConfig)):
            return f"a list, e.g. {example}"
        if non_empty and len(value) == 0:
            return "a non-empty list"
        for item in value:
            wanted = rule(item)
            if wanted:
                return f"a list of items each {wanted} (not {item!r})"
        return None
    return check


def shown(value) -> str:
    if isinstance(value, ListConfig):
        value = list(value)
    return repr(value) if isinstance(value, str) else str(value)


def check_fields(owner: object, prefix: str, rules: Mapping[str, Rule]) -> None:
    """ConfigError for the first attribute of `owner` its rule refuses, named `<prefix>.<attribute>`."""
    check_values(prefix, {name: getattr(owner, name) for name in rules}, rules)


def check_values(prefix: str, values: Mapping[str, object], rules: Mapping[str, Rule]) -> None:
    """ConfigError for the first of `values` its rule refuses, named `<prefix>.<name>`."""
    for name, rule in rules.items():
        wanted = rule(values[name])
        if wanted:
            raise ConfigError(f"{prefix}.{name}={shown(values[name])}: must be {wanted}")
