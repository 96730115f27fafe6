"""The activation lab: measured experiments on activation functions, and verdicts on the rules of
thumb."""
