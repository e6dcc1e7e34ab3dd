"""serkit plugin: BYOL-A / BYOL-S (AudioNTT2020) audio embeddings as a serkit extractor.

Installing this package registers the ``byol`` extractor through the entry point
``serkit.plugins: byol = serkit_plugin_byol.plugin``; recipes then use
``extractor: {type: byol, checkpoint: /path/AudioNTT2020-BYOLA-64x96d2048.pth, d: 2048}``.
The torch network lives in :mod:`serkit_plugin_byol.network` (imported only when needed).
"""

from __future__ import annotations

from serkit_plugin_byol.extractor import Byol

__all__ = ["Byol"]
__version__ = "0.1.0"
