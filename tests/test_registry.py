from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import Field

from serkit import ComponentParams, Dataset, PluginError, RecipeError, Registry


def make_dataset(name: str) -> type[Dataset]:
    class _D(Dataset):
        """A test dataset."""

        class Params(ComponentParams):
            root: str = Field("x", description="root")

        def utterances(self):  # type: ignore[no-untyped-def]
            return []

    _D.name = name  # type: ignore[misc]
    return _D


def test_register_and_get() -> None:
    reg = Registry()
    cls = make_dataset("alpha")
    reg.register(cls)
    assert reg.get("dataset", "alpha") is cls
    assert reg.names("dataset") == ["alpha"]
    assert ("dataset", "alpha") in reg


def test_unknown_name_lists_available_and_closest() -> None:
    reg = Registry()
    reg.register(make_dataset("emodb"))
    reg.register(make_dataset("manifest"))
    with pytest.raises(RecipeError) as info:
        reg.get("dataset", "emod")
    assert (
        str(info.value)
        == "unknown dataset type 'emod'; available: emodb, manifest; did you mean 'emodb'?"
    )


def test_duplicate_name_names_both_plugins() -> None:
    reg = Registry()
    reg._set_source("first", "pkg-one")
    reg.register(make_dataset("same"))
    reg._set_source("second", "pkg-two")
    with pytest.raises(PluginError) as info:
        reg.register(make_dataset("same"))
    assert str(info.value) == (
        "plugin 'second' (distribution pkg-two): dataset 'same' is already registered by "
        "plugin 'first' (distribution pkg-one)"
    )


@pytest.mark.parametrize("name", ["Bad", "with space", "", "1x"])
def test_bad_names_rejected(name: str) -> None:
    with pytest.raises(PluginError, match="expected snake_case"):
        Registry().register(make_dataset(name))


def test_params_may_not_declare_type() -> None:
    class _D(Dataset):
        name: ClassVar[str] = "typed"

        class Params(ComponentParams):
            type: str = "x"

        def utterances(self):  # type: ignore[no-untyped-def]
            return []

    with pytest.raises(PluginError, match="declares a 'type' field"):
        Registry().register(_D)


def test_create_from_dict() -> None:
    reg = Registry()
    reg.register(make_dataset("alpha"))
    comp = reg.create("dataset", {"type": "alpha", "root": "/data"})
    assert comp.params.root == "/data"
