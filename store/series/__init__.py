"""Metric series stored in chunks: one row per (job, name, block of CHUNK_STEPS steps).

Each row holds the block's points as arrays (step offsets, values, the attempt that wrote each
point) in one payload, compressed where that pays, beside a summary of the block (its first and
last step, the number of points, its lowest and highest finite point, its first non-finite one)
and a sketch (the lowest and highest point of each run of SKETCH_STEPS steps). A downsampled
read of a long series reads sketches, not points: O(points returned) bytes, whatever the length.
"""
