"""`dlbench probe`: the precision support matrix (backend × device × precision × layer, forward and backward)."""
