"""The seed's "fluffy" metrics, measured: writing and reading code (code_metrics: lines and framework API names of
dlbench's own backend source and of the bare scripts, by an AST tool that imports nothing), debugging and moving
to production (probe: worker processes run backends/usability/ probes), `dlbench usability` (commands).

Parent-side package: no framework is imported here.
"""
