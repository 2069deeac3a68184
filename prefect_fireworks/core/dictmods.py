"""FireWorks' DictMod language: Mongo-like in-place modifications of a spec dict.

An ``FWAction.mod_spec`` is a list of modifications such as ``{"_push": {"results": 3}}``; each is
applied to the spec of the completed Firework's children. Nested keys are written with ``->``
(``{"_set": {"a->b": 1}}`` sets ``spec["a"]["b"]``), never with dots. Where FireWorks 2.1.4 creates
missing intermediate dicts on the way to a nested key (every verb except ``_rename``), so does this
module, and its less obvious rules are kept on purpose so that a spec modified here equals the spec
FireWorks would produce:

- ``_add_to_set`` on a missing key stores the value itself, not a one-element list;
- ``_rename`` only renames top-level keys, literally (``->`` is not interpreted), and ignores
  missing keys;
- ``_unset`` and ``_pop`` of a missing key raise ``KeyError``; ``_pop`` with a value other than
  ``1`` (last) or ``-1`` (first) does nothing.

``_pull_all`` removes every listed value, as FireWorks documents (its 2.1.4 implementation fails
with ``AttributeError`` whenever the list of values is not empty).

Values are deep-copied into the target, so one modification applied to several children never
makes them share a list or dict.

Example:
    ```python
    from prefect_fireworks.core.dictmods import apply_mod

    spec = {"results": [1]}
    apply_mod({"_push": {"results": 2}, "_set": {"params->temperature": 300}}, spec)
    assert spec == {"results": [1, 2], "params": {"temperature": 300}}
    ```
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["KEY_SEPARATOR", "SUPPORTED_ACTIONS", "apply_mod", "apply_mods"]

KEY_SEPARATOR = "->"
"""Separates the levels of a nested key (``"a->b->c"``)."""


def _container(obj: dict[str, Any], key: str, verb: str) -> tuple[dict[str, Any], str]:
    """The dict holding ``key``'s last level, creating missing intermediate dicts."""
    *parents, last = key.split(KEY_SEPARATOR)
    current = obj
    for i, tok in enumerate(parents):
        if tok not in current:
            current[tok] = {}
        nxt = current[tok]
        if not isinstance(nxt, dict):
            path = KEY_SEPARATOR.join(parents[: i + 1])
            raise ValueError(
                f"{verb}: cannot reach {key!r}: {path!r} is a {type(nxt).__name__}, not a dict"
            )
        current = nxt
    return current, last


def _settings_items(verb: str, settings: Any) -> Iterable[tuple[str, Any]]:
    if not isinstance(settings, Mapping):
        raise ValueError(
            f"{verb} needs a mapping of key to value, not {type(settings).__name__}: {settings!r}"
        )
    return settings.items()


def _array(verb: str, key: str, d: dict[str, Any], last: str) -> list[Any]:
    """The list at ``d[last]`` (a tuple is turned into a list in place)."""
    value = d[last]
    if isinstance(value, tuple):
        value = d[last] = list(value)
    if not isinstance(value, list):
        raise ValueError(f"{verb}: key {key!r} does not refer to an array")
    return value


def _set(obj: dict[str, Any], settings: Any) -> None:
    for key, value in _settings_items("_set", settings):
        d, last = _container(obj, key, "_set")
        d[last] = copy.deepcopy(value)


def _unset(obj: dict[str, Any], settings: Any) -> None:
    keys = [settings] if isinstance(settings, str) else list(settings)
    for key in keys:
        d, last = _container(obj, key, "_unset")
        if last not in d:
            raise KeyError(f"_unset: no key {key!r}")
        del d[last]


def _push(obj: dict[str, Any], settings: Any) -> None:
    for key, value in _settings_items("_push", settings):
        d, last = _container(obj, key, "_push")
        if last in d:
            _array("_push", key, d, last).append(copy.deepcopy(value))
        else:
            d[last] = [copy.deepcopy(value)]


def _push_all(obj: dict[str, Any], settings: Any) -> None:
    for key, values in _settings_items("_push_all", settings):
        d, last = _container(obj, key, "_push_all")
        if last in d:
            _array("_push_all", key, d, last).extend(copy.deepcopy(list(values)))
        else:
            d[last] = copy.deepcopy(list(values))


def _inc(obj: dict[str, Any], settings: Any) -> None:
    for key, value in _settings_items("_inc", settings):
        d, last = _container(obj, key, "_inc")
        if last in d:
            d[last] += value
        else:
            d[last] = copy.deepcopy(value)


def _rename(obj: dict[str, Any], settings: Any) -> None:
    # FireWorks renames top-level keys only, without interpreting "->".
    for old, new in _settings_items("_rename", settings):
        if old in obj:
            obj[new] = obj.pop(old)


def _add_to_set(obj: dict[str, Any], settings: Any) -> None:
    for key, value in _settings_items("_add_to_set", settings):
        d, last = _container(obj, key, "_add_to_set")
        if last not in d:
            # FireWorks stores the bare value here, not [value].
            d[last] = copy.deepcopy(value)
            continue
        array = _array("_add_to_set", key, d, last)
        if value not in array:
            array.append(copy.deepcopy(value))


def _pull(obj: dict[str, Any], settings: Any) -> None:
    for key, value in _settings_items("_pull", settings):
        d, last = _container(obj, key, "_pull")
        if last in d:
            d[last] = [x for x in _array("_pull", key, d, last) if x != value]


def _pull_all(obj: dict[str, Any], settings: Any) -> None:
    for key, values in _settings_items("_pull_all", settings):
        d, last = _container(obj, key, "_pull_all")
        if last in d:
            drop = list(values)
            d[last] = [x for x in _array("_pull_all", key, d, last) if x not in drop]


def _pop(obj: dict[str, Any], settings: Any) -> None:
    for key, end in _settings_items("_pop", settings):
        d, last = _container(obj, key, "_pop")
        if last not in d:
            raise KeyError(f"_pop: no key {key!r}")
        array = _array("_pop", key, d, last)
        if end == 1:
            array.pop()
        elif end == -1:
            array.pop(0)


SUPPORTED_ACTIONS: dict[str, Callable[[dict[str, Any], Any], None]] = {
    "_set": _set,
    "_unset": _unset,
    "_push": _push,
    "_push_all": _push_all,
    "_inc": _inc,
    "_rename": _rename,
    "_add_to_set": _add_to_set,
    "_pull": _pull,
    "_pull_all": _pull_all,
    "_pop": _pop,
}
"""The DictMod verbs, by name, with the function applying each."""


def apply_mod(modification: Mapping[str, Any], obj: dict[str, Any]) -> None:
    """Apply one DictMod (``{verb: settings, ...}``) to ``obj`` in place.

    Several verbs in one modification are applied in their order in the mapping. Every verb is
    checked before anything is changed, so an unknown verb leaves ``obj`` untouched.

    Args:
        modification: verbs (``_set``, ``_unset``, ``_push``, ``_push_all``, ``_inc``,
            ``_rename``, ``_add_to_set``, ``_pull``, ``_pull_all``, ``_pop``) mapped to their
            settings, e.g. ``{"_inc": {"counts->runs": 1}}``.
        obj: the dict to modify (a Firework spec).

    Raises:
        ValueError: an unknown verb, malformed settings, or a key that must hold an array
            (``_push``, ``_pull``, ``_pop``, ...) or a dict (a nested level) holds something else.
        KeyError: ``_unset`` or ``_pop`` of a missing key.

    Example:
        ```python
        spec = {"n": 1, "tags": ["a"]}
        apply_mod({"_inc": {"n": 2}, "_add_to_set": {"tags": "a"}}, spec)
        assert spec == {"n": 3, "tags": ["a"]}
        ```
    """
    if not isinstance(modification, Mapping):
        raise ValueError(
            f"a DictMod must be a mapping of verb to settings, not {type(modification).__name__}"
        )
    for verb in modification:
        if verb not in SUPPORTED_ACTIONS:
            raise ValueError(
                f"{verb!r} is not a supported DictMod action "
                f"(supported: {', '.join(SUPPORTED_ACTIONS)})"
            )
    for verb, settings in modification.items():
        SUPPORTED_ACTIONS[verb](obj, settings)


def apply_mods(mods: Iterable[Mapping[str, Any]], obj: dict[str, Any]) -> None:
    """Apply DictMods one after the other (an ``FWAction.mod_spec`` list) to ``obj`` in place.

    Args:
        mods: the modifications, in order.
        obj: the dict to modify.

    Raises:
        ValueError: see `apply_mod`.
        KeyError: see `apply_mod`.

    Example:
        ```python
        spec = {}
        apply_mods([{"_push": {"out": 1}}, {"_push": {"out": 2}}], spec)
        assert spec == {"out": [1, 2]}
        ```
    """
    for mod in mods:
        apply_mod(mod, obj)
