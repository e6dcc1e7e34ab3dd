"""Test helpers that ship with serkit: synthetic data, tiny recipes, plugin contract tests."""
