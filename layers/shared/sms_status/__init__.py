"""Normalized SMS delivery status: the shared layer (model, mappings, provider clients, API glue)."""
