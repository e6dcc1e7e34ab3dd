"""Packages of the serkit distribution (everything else is in pyproject.toml).

The recipes in the repository's ``recipes/`` folder ship inside the package as
``serkit/recipes/*.yaml`` (see :mod:`serkit.bundled`), so ``serkit run quickstart`` works
from any folder after ``pip install``.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["serkit*"]), "serkit.recipes"],
    package_dir={"serkit.recipes": "recipes"},
)
