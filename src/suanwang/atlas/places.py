"""Resolve a city or site name given in Chinese, pinyin or English ("许昌", "Xuchang", "xuchang")."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Generic, TypeVar

from suanwang.errors import UnknownPlaceError

T = TypeVar("T")


def normalise(name: str) -> str:
    """Lower-case, drop spaces, apostrophes, hyphens and the suffixes 市 / 省 (so 'Xi'an' == 'xian')."""
    s = re.sub(r"[\s'’\-_.]", "", name.strip().lower())
    return re.sub(r"(市|省|city)$", "", s) or s


class NameIndex(Generic[T]):
    """Maps every alias of an item to the item; unknown names get the closest suggestions."""

    def __init__(self, kind: str):
        self.kind = kind
        self._by_alias: dict[str, T] = {}
        self._display: dict[str, str] = {}

    def add(self, item: T, aliases: Iterable[str], display: str) -> None:
        """Register `item` under each alias (first writer wins, so list the preferred items first)."""
        for alias in aliases:
            if alias:
                key = normalise(alias)
                self._by_alias.setdefault(key, item)
                self._display.setdefault(key, display)

    def get(self, name: str) -> T:
        """The item called `name`; raises UnknownPlaceError with up to 5 suggestions."""
        key = normalise(name)
        if key in self._by_alias:
            return self._by_alias[key]
        close = difflib.get_close_matches(key, self._by_alias, n=8, cutoff=0.5)
        suggestions = list(dict.fromkeys(self._display[c] for c in close))[:5]
        raise UnknownPlaceError(name, suggestions, self.kind)

    def __contains__(self, name: str) -> bool:
        return normalise(name) in self._by_alias
