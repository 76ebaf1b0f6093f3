"""The largest batch that fits: `dlbench maxbatch`. search.py is the search (pure), api.py runs it with real
workers and stores each finding, commands.py is the command line; report/maxbatch_section.py shows the table."""
