"""serkit plugin: openSMILE feature sets (eGeMAPS, ComParE 2016, ...) as a serkit extractor.

Installing this package registers the ``opensmile`` extractor through the entry point
``serkit.plugins: opensmile = serkit_plugin_opensmile.plugin``; recipes then use
``extractor: {type: opensmile, feature_set: eGeMAPSv02, level: functionals}``.
"""

from __future__ import annotations

from serkit_plugin_opensmile.extractor import FEATURE_SETS, OpenSmile

__all__ = ["FEATURE_SETS", "OpenSmile"]
__version__ = "0.1.0"
