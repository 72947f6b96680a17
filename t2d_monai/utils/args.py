"""Command-line list arguments: ``"a,b"`` (as typed) or fire's tuple/list (as parsed) -> a list of strings."""

from __future__ import annotations

from typing import Any

__all__ = ["comma_list"]


def comma_list(value: Any) -> list[str]:
    """``None`` -> ``[]``; ``"a, b,"`` -> ``["a", "b"]``; a sequence -> its items as stripped strings (empty ones
    dropped)."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return [v.strip() for v in items if v.strip()]
