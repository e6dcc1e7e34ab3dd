"""Feature store (embedded SQLite database) and the resumable extraction driver."""

from __future__ import annotations

from serkit.features.driver import ExtractionResult, extract_features, validate_output
from serkit.features.store import FeatureStore, StoreDtype

__all__ = ["ExtractionResult", "FeatureStore", "StoreDtype", "extract_features", "validate_output"]
