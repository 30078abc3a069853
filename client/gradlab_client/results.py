"""What the list-like calls return: lazy pagers over every page, and results with `to_pandas()`.

pandas is optional (`pip install 'gradlab-client[pandas]'`): it is imported only inside
`to_pandas()`, so the SDK stays httpx + pydantic for pipelines that never need a DataFrame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from gradlab_contract.models import MetricSeries, Snapshot

if TYPE_CHECKING:
    import pandas

T = TypeVar("T")
# Fetches one page given the cursor from the previous one (None for the first page).
PageFetcher = Callable[[str | None], tuple[Sequence[T], str | None]]


class Pager(Generic[T]):
    """Iterates the items of every page, fetching the next page only when it is reached.

    Each iteration starts again from the first page, so a pager can be walked more than once.
    """

    def __init__(self, fetch_page: PageFetcher[T]) -> None:
        self._fetch_page = fetch_page

    def __iter__(self) -> Iterator[T]:
        cursor: str | None = None
        while True:
            items, cursor = self._fetch_page(cursor)
            yield from items
            if not cursor:
                return


class SnapshotIterator(Pager[Snapshot]):
    """Snapshots of a job, page after page; `to_pandas()` reads them all into one table."""

    def to_pandas(self) -> pandas.DataFrame:
        """One row per snapshot: step, kind, layer, depth, every statistic, and the histograms."""
        pd = _import_pandas()
        return pd.DataFrame([_snapshot_row(snapshot) for snapshot in self])


class MetricsResult(list[MetricSeries]):
    """The metric series of a job (a list), with lookup by name and `to_pandas()`."""

    def get(self, name: str) -> MetricSeries | None:
        return next((series for series in self if series.name == name), None)

    def to_pandas(self, *, wide: bool = True) -> pandas.DataFrame:
        """Wide: indexed by step, one column per metric (NaN where a series has no point at that
        step, since each series is downsampled on its own). Long: columns name, step, value."""
        pd = _import_pandas()
        if not wide:
            rows = [
                {"name": series.name, "step": step, "value": value}
                for series in self
                for step, value in zip(series.steps, series.values, strict=True)
            ]
            return pd.DataFrame(rows, columns=["name", "step", "value"])
        columns = {
            series.name: pd.Series(series.values, index=series.steps, dtype="float64")
            for series in self
        }
        frame = pd.DataFrame(columns).sort_index()
        frame.index.name = "step"
        return frame


def _snapshot_row(snapshot: Snapshot) -> dict[str, Any]:
    row: dict[str, Any] = {
        "step": snapshot.step,
        "kind": snapshot.kind,
        "layer": snapshot.layer,
        "depth": snapshot.depth,
    }
    row.update(snapshot.stats)
    row["histogram_edges"] = snapshot.histogram.edges
    row["histogram_counts"] = snapshot.histogram.counts
    if snapshot.log_histogram is not None:
        row["log_histogram_edges"] = snapshot.log_histogram.edges
        row["log_histogram_counts"] = snapshot.log_histogram.counts
    return row


def _import_pandas() -> Any:
    try:
        import pandas
    except ImportError as exc:
        raise ImportError(
            "to_pandas() needs pandas, which gradlab-client does not install by default: "
            "pip install 'gradlab-client[pandas]' (or pip install pandas)"
        ) from exc
    return pandas
