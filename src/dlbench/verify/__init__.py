"""`dlbench verify`: every backend × workload × precision against the float64 reference, at small sizes, in worker
processes. api.py is the Python API, command.py the command line; the check itself, which every run also makes
before it times a group, is the runner's (runner/verification.py)."""
