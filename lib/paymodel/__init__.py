"""paymodel."""
