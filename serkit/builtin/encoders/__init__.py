"""Built-in components."""
