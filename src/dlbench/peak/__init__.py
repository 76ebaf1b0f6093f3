"""`dlbench peak`: this machine's matrix-multiply FLOP/s per precision and memory bandwidth, and every result's
achieved FLOP/s as a % of it."""
