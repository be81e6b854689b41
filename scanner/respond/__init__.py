"""Incident response: playbooks (schema, plan, run, resume), their journal and audit chain,
per-target locks, the keystore, and the actions and connectors that act on hosts."""
