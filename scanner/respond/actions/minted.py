"""Secrets an action minted, read back from posture's keystore: after a crash (reconcile) or for
an undo, the new key or password is known only to the keystore, stored there before it was used.
"""

from __future__ import annotations

from scanner.respond.errors import KeystoreError
from scanner.respond.secrets import Secret

NEWEST = 3  # a crashed step leaves at most one version; a few more cover retries


def newest_versions(name: str, limit: int = NEWEST) -> list[Secret]:
    """The newest versions of `name` (pending or current), newest first; each Secret is named by
    its reference (`keystore:NAME@VERSION`). Empty when there is no keystore or no such name:
    the caller then falls back to running again, which is always safe for a rotation."""
    from scanner.respond.keystore import default_keystore, default_path

    if not default_path().exists():  # opening would create an empty keystore
        return []
    try:
        with default_keystore() as store:
            versions = sorted(
                (e.version for e in store.entries() if e.name == name and e.state != "previous"),
                reverse=True,
            )
            return [store.get(name, v) for v in versions[:limit]]
    except KeystoreError:
        return []
