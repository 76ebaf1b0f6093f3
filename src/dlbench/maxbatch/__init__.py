"""The largest batch that fits: `dlbench maxbatch`. search.py is the search (pure), api.py runs it with real
workers and stores each finding, command.py is the command line; section.py is the report's section."""
