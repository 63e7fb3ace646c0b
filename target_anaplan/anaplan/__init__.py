"""Anaplan Integration API client: calls, auth, token store, retry, errors, regions.

Knows nothing of Singer: the target drives it with plain values.
"""
