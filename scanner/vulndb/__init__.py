"""Offline advisory database: importers, version comparators per ecosystem, matching."""
