"""Sources built over another source (kept images, TTA views): the delegation they share."""
from __future__ import annotations

from ambient_eval.data.base import ImageSource


class WrappedSource(ImageSource):
    """An ImageSource over another one: same length, size, names and labels as `base`."""

    def __init__(self, base: ImageSource) -> None:
        super().__init__()
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    @property
    def resolution(self) -> tuple[int, int]:
        return self.base.resolution

    def item_names(self) -> list[str]:
        return self.base.item_names()

    def labels(self):
        return self.base.labels()
