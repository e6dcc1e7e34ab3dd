"""serkit plugin for the URDU emotional speech corpus (Latif et al., 2018).

Installing this package registers the ``urdu`` dataset through the entry point
``serkit.plugins: urdu = serkit_plugin_urdu.plugin``; recipes then use
``dataset: {type: urdu, root: /path/to/URDU-Dataset}``.
"""

from __future__ import annotations

from serkit_plugin_urdu.dataset import UrduDataset, parse_name

__all__ = ["UrduDataset", "parse_name"]
__version__ = "0.1.0"
