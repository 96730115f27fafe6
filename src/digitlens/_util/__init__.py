"""Small leaf helpers every layer may use: atomic files, PNG and data URLs, JSON-safe numbers,
argument checks, and where digitlens keeps its files.

Nothing here imports the rest of digitlens."""
