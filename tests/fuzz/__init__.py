"""Fuzz targets shared by `make fuzz` (scripts/fuzz.py), the short fixed-seed pass in
`make test` (tests/unit/test_fuzz_targets.py) and the network fuzzer (scripts/netfuzz.py)."""
