"""Benchmarks that write the figures quoted in docs/ (run through ``python -m t2d_monai``)."""
