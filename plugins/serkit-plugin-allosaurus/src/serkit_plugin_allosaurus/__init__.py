"""serkit plugin: Allosaurus phone posteriors and hidden states as a serkit extractor.

Installing this package registers the ``allosaurus`` extractor through the entry point
``serkit.plugins: allosaurus = serkit_plugin_allosaurus.plugin``; recipes then use
``extractor: {type: allosaurus, model_dir: /models/uni2005, output: posteriors}``.
"""

from __future__ import annotations

from serkit_plugin_allosaurus.extractor import Allosaurus, default_model_dir, download_command

__all__ = ["Allosaurus", "default_model_dir", "download_command"]
__version__ = "0.1.0"
