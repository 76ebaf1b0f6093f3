"""`dlbench envs`: managed Python environments, in which a backend's workers can run (the seed's Theano, or one
framework at two versions). api.py makes and removes them, command.py is the command line; what an env is on disk
and how workers run in one is the runner's (runner/environments.py, runner/interpreters.py)."""
