"""Judgements over TLS facts: the SSL Labs-style grade (grade.py), conformance to Mozilla's
Server Side TLS profiles (mozilla.py) and the flat facts rules match on (tls_facts.py)."""
