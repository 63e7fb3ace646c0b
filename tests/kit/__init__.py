"""The tests' helper kits, one module a subject: Singer messages, target configs and runs,
the simulator's clients and scenarios, OAuth and certificates, faults, the admin command,
the e2e stack's products and taps. Fixtures stay in the tiers' conftest.py files.

Imported as `tests.kit.<module>`: pytest puts the repository root on sys.path
(pyproject.toml's `pythonpath`), which also makes the demo's `demo/stack.py` importable.
"""
