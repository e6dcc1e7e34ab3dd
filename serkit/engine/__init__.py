"""serkit."""
