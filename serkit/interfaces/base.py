"""The base of every registered component: ``kind``, ``name`` and a pydantic ``Params``.

A component class is light: importing it must not import torch, transformers or any
other heavy library, so that ``serkit --help``, ``serkit plugins`` and ``serkit validate``
stay fast. Networks are built on demand by the component's ``build`` method, which
imports what it needs.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

__all__ = ["Component", "ComponentParams"]


class ComponentParams(BaseModel):
    """Parameters of a component: frozen, unknown fields rejected.

    Every field should carry a ``description``; it is shown by ``serkit schema`` and in
    the generated recipe reference. The ``type`` discriminator is added by the recipe
    builder; component authors do not declare it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


class Component:
    """A registered, recipe-configurable building block.

    Subclasses set ``kind`` (through their interface class), ``name`` (stable snake_case,
    the value of ``type:`` in recipes) and a nested ``Params`` model.
    """

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    Params: ClassVar[type[ComponentParams]] = ComponentParams

    def __init__(self, params: ComponentParams | None = None, **kwargs: Any) -> None:
        if params is None:
            params = self.Params(**kwargs)
        elif kwargs:
            params = type(params).model_validate({**params.model_dump(), **kwargs})
        self.params = params

    @classmethod
    def describe(cls) -> str:
        """First line of the class docstring, used by ``serkit plugins``."""
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.params.model_dump().items() if k != "type")
        return f"{type(self).__name__}({fields})"
