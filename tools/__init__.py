"""Operator commands for a deployed stack (and make run)."""
