"""Runs: `dlbench run` measures a suite (or one workload) into a run in the store; `show`, `runs`, `list` and `env`
read what is stored and what can be run. api.py is the Python API (plan, run, load_run), command.py the command
line, tables.py the seed's two tables, render.py a run as a terminal table, Markdown, CSV or JSON."""
