"""dlbench's vocabulary, below everything else: cases and measurement settings (cases), precisions and their
tolerances, results and runs as a notebook sees them, user errors, tables, sizes, and the command line's argument
syntax. Standard library (and, for results, nothing heavier) only: every layer may import it, it imports none."""
