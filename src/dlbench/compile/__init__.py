"""`dlbench compile`: the first step's time broken into the phases each framework lets us see (trace, lower,
compile, first execution, ...), in a fresh process with every persistent compilation cache empty ("cold") and
again in a fresh process that finds the cache the first one filled ("warm").

api.py runs the cases and stores the findings (the Python API; parent side: no framework is imported here);
table.py shapes findings into rows for the terminal and the report; command.py is the command line; section.py
is the report's section.
"""
