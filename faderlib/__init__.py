"""faderlib."""
