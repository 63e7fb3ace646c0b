"""Allow ``python -m target_anaplan``."""

from __future__ import annotations

from target_anaplan.target import TargetAnaplan

TargetAnaplan.cli()
