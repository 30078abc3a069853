"""Metric series stored in chunks: one row per (job, name, block of CHUNK_STEPS steps).

Each row holds the block's points as arrays (step offsets, values, the attempt that wrote each
point) in one payload, compressed where that pays, beside a summary of the block (its first and
last step, the number of points, its lowest and highest finite point, its first non-finite one).
A downsampled read of a long series then reads summaries, not points: O(points returned) rows.
"""

from store.series.codec import CHUNK_STEPS, Block, Summary, decode, encode, summarize

__all__ = ["CHUNK_STEPS", "Block", "Summary", "decode", "encode", "summarize"]
