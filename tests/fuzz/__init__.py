"""Fuzzing of every parser and state machine (hypothesis; the coverage-guided
targets are in the top-level ``fuzz/`` directory)."""
