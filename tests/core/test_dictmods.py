"""DictMod verbs (``FWAction.mod_spec``), checked by value and against FireWorks 2.1.4."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from prefect_fireworks.core.dictmods import SUPPORTED_ACTIONS, apply_mod, apply_mods

# (start, modification, expected) -- every verb, flat and nested ("->") keys.
CASES: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    # _set
    ({}, {"_set": {"a": 1}}, {"a": 1}),
    ({"a": 0, "b": 2}, {"_set": {"a": 1}}, {"a": 1, "b": 2}),
    ({}, {"_set": {"a->b->c": 1}}, {"a": {"b": {"c": 1}}}),
    ({"a": {"x": 0}}, {"_set": {"a->b": [1]}}, {"a": {"x": 0, "b": [1]}}),
    ({"a": 1}, {"_set": {"a": {"nested": True}}}, {"a": {"nested": True}}),
    # _unset
    ({"a": 1, "b": 2}, {"_unset": {"a": 1}}, {"b": 2}),
    ({"a": 1, "b": 2}, {"_unset": ["a", "b"]}, {}),
    ({"a": {"b": 1, "c": 2}}, {"_unset": {"a->b": ""}}, {"a": {"c": 2}}),
    # _push
    ({}, {"_push": {"a": 1}}, {"a": [1]}),
    ({"a": [1]}, {"_push": {"a": 2}}, {"a": [1, 2]}),
    ({"a": [1]}, {"_push": {"a": [2]}}, {"a": [1, [2]]}),
    ({}, {"_push": {"a->b": 1}}, {"a": {"b": [1]}}),
    ({"a": {"b": [0]}}, {"_push": {"a->b": 1}}, {"a": {"b": [0, 1]}}),
    # _push_all
    ({}, {"_push_all": {"a": [1, 2]}}, {"a": [1, 2]}),
    ({"a": [0]}, {"_push_all": {"a": [1, 2]}}, {"a": [0, 1, 2]}),
    ({"x": {"a": [0]}}, {"_push_all": {"x->a": [1]}}, {"x": {"a": [0, 1]}}),
    # _inc
    ({}, {"_inc": {"n": 2}}, {"n": 2}),
    ({"n": 1}, {"_inc": {"n": 2}}, {"n": 3}),
    ({"n": 1.5}, {"_inc": {"n": -0.5}}, {"n": 1.0}),
    ({"c": {"n": 1}}, {"_inc": {"c->n": 1, "c->m": 5}}, {"c": {"n": 2, "m": 5}}),
    # _rename: top-level keys only, "->" taken literally, missing keys ignored
    ({"a": 1}, {"_rename": {"a": "b"}}, {"b": 1}),
    ({"a": 1}, {"_rename": {"missing": "b"}}, {"a": 1}),
    ({"a": {"b": 1}}, {"_rename": {"a->b": "a->c"}}, {"a": {"b": 1}}),
    # _add_to_set: a missing key gets the bare value
    ({"a": [1]}, {"_add_to_set": {"a": 2}}, {"a": [1, 2]}),
    ({"a": [1, 2]}, {"_add_to_set": {"a": 2}}, {"a": [1, 2]}),
    ({}, {"_add_to_set": {"a": 2}}, {"a": 2}),
    ({"s": {"a": ["x"]}}, {"_add_to_set": {"s->a": "y"}}, {"s": {"a": ["x", "y"]}}),
    # _pull
    ({"a": [1, 2, 1, 3]}, {"_pull": {"a": 1}}, {"a": [2, 3]}),
    ({"a": [1]}, {"_pull": {"a": 5}}, {"a": [1]}),
    ({}, {"_pull": {"a": 1}}, {}),
    ({"x": {"a": [{"k": 1}, {"k": 2}]}}, {"_pull": {"x->a": {"k": 1}}}, {"x": {"a": [{"k": 2}]}}),
    # _pull_all
    ({"a": [1, 2, 3, 2]}, {"_pull_all": {"a": [2, 3]}}, {"a": [1]}),
    ({"x": {"a": [1, 2]}}, {"_pull_all": {"x->a": [1]}}, {"x": {"a": [2]}}),
    ({}, {"_pull_all": {"a": [1]}}, {}),
    # _pop: 1 = last, -1 = first, anything else does nothing
    ({"a": [1, 2, 3]}, {"_pop": {"a": 1}}, {"a": [1, 2]}),
    ({"a": [1, 2, 3]}, {"_pop": {"a": -1}}, {"a": [2, 3]}),
    ({"a": [1, 2, 3]}, {"_pop": {"a": 0}}, {"a": [1, 2, 3]}),
    ({"x": {"a": [1, 2]}}, {"_pop": {"x->a": 1}}, {"x": {"a": [1]}}),
    # several verbs in one modification run in order
    ({"a": [1]}, {"_push": {"a": 2}, "_pop": {"a": -1}}, {"a": [2]}),
    ({}, {"_set": {"n": 1}, "_inc": {"n": 1}, "_rename": {"n": "m"}}, {"m": 2}),
]

ERRORS: list[tuple[dict[str, Any], dict[str, Any], type[Exception], str]] = [
    ({"a": 1}, {"_push": {"a": 2}}, ValueError, "does not refer to an array"),
    ({"a": 1}, {"_push_all": {"a": [2]}}, ValueError, "does not refer to an array"),
    ({"a": 1}, {"_add_to_set": {"a": 2}}, ValueError, "does not refer to an array"),
    ({"a": "x"}, {"_pull": {"a": "x"}}, ValueError, "does not refer to an array"),
    ({"a": 1}, {"_pull_all": {"a": [1]}}, ValueError, "does not refer to an array"),
    ({"a": {}}, {"_pop": {"a": 1}}, ValueError, "does not refer to an array"),
    ({}, {"_unset": ["a"]}, KeyError, "_unset: no key 'a'"),
    ({}, {"_pop": {"a": 1}}, KeyError, "_pop: no key 'a'"),
    ({"a": [1]}, {"_set": {"a->b": 1}}, ValueError, "'a' is a list, not a dict"),
    ({}, {"_set": ["a"]}, ValueError, "_set needs a mapping"),
]


@pytest.mark.parametrize(("start", "mod", "expected"), CASES)
def test_verbs(start: dict[str, Any], mod: dict[str, Any], expected: dict[str, Any]) -> None:
    obj = copy.deepcopy(start)
    apply_mod(mod, obj)
    assert obj == expected


@pytest.mark.parametrize(("start", "mod", "expected"), CASES)
def test_same_result_as_fireworks(
    start: dict[str, Any], mod: dict[str, Any], expected: dict[str, Any]
) -> None:
    fw_dict_mods = pytest.importorskip("fireworks.utilities.dict_mods")
    obj = copy.deepcopy(start)
    if "_pull_all" in mod:
        # FireWorks 2.1.4's _pull_all calls DictMods.pull on a class its @singleton decorator
        # replaced by a function, so it always fails; ours pulls each value as documented.
        with pytest.raises(AttributeError, match=r"has no attribute 'pull'"):
            fw_dict_mods.apply_mod(copy.deepcopy(mod), obj)
        return
    fw_dict_mods.apply_mod(copy.deepcopy(mod), obj)
    assert obj == expected


@pytest.mark.parametrize(("start", "mod", "exc", "message"), ERRORS)
def test_errors(
    start: dict[str, Any], mod: dict[str, Any], exc: type[Exception], message: str
) -> None:
    with pytest.raises(exc, match=message):
        apply_mod(mod, copy.deepcopy(start))


def test_every_fireworks_verb_is_supported() -> None:
    assert set(SUPPORTED_ACTIONS) == {
        "_set",
        "_unset",
        "_push",
        "_push_all",
        "_inc",
        "_rename",
        "_add_to_set",
        "_pull",
        "_pull_all",
        "_pop",
    }


def test_unknown_verb_is_rejected_before_any_change() -> None:
    obj = {"a": 1}
    with pytest.raises(ValueError, match=r"'\$set' is not a supported DictMod action") as info:
        apply_mod({"_set": {"a": 2}, "$set": {"a": 3}}, obj)
    assert "\n" not in str(info.value)
    assert "_push_all" in str(info.value)
    assert obj == {"a": 1}


def test_dots_are_not_nested_keys() -> None:
    obj: dict[str, Any] = {}
    apply_mod({"_set": {"a.b": 1}}, obj)
    assert obj == {"a.b": 1}


def test_missing_intermediate_dicts_are_created_even_when_nothing_else_changes() -> None:
    # FireWorks walks (and creates) the path before looking at the last key.
    obj: dict[str, Any] = {}
    apply_mod({"_pull": {"x->y->z": 1}}, obj)
    assert obj == {"x": {"y": {}}}


def test_values_are_copied_not_shared() -> None:
    mod = {"_set": {"lst": [1]}, "_push": {"rows": {"k": [1]}}}
    one: dict[str, Any] = {}
    two: dict[str, Any] = {}
    apply_mod(mod, one)
    apply_mod(mod, two)
    one["lst"].append(2)
    one["rows"][0]["k"].append(2)
    assert two == {"lst": [1], "rows": [{"k": [1]}]}
    assert mod == {"_set": {"lst": [1]}, "_push": {"rows": {"k": [1]}}}


def test_unset_accepts_a_single_key_string() -> None:
    obj = {"abc": 1, "a": 2}
    apply_mod({"_unset": "abc"}, obj)
    assert obj == {"a": 2}


def test_tuples_count_as_arrays() -> None:
    obj: dict[str, Any] = {"a": (1, 2)}
    apply_mod({"_push": {"a": 3}}, obj)
    assert obj == {"a": [1, 2, 3]}


def test_apply_mods_runs_in_order() -> None:
    spec: dict[str, Any] = {"results": [0]}
    apply_mods(
        [
            {"_push": {"results": 1}},
            {"_push_all": {"results": [2, 3]}},
            {"_pop": {"results": -1}},
            {"_set": {"meta->count": 3}},
            {"_inc": {"meta->count": 1}},
        ],
        spec,
    )
    assert spec == {"results": [1, 2, 3], "meta": {"count": 4}}


def test_apply_mods_stops_at_first_error() -> None:
    spec: dict[str, Any] = {}
    with pytest.raises(ValueError, match=r"'_bogus' is not a supported"):
        apply_mods([{"_set": {"a": 1}}, {"_bogus": {}}, {"_set": {"b": 1}}], spec)
    assert spec == {"a": 1}
