"""Baseline market-making policies and the evaluation harness."""
