"""Cases on a Ray cluster: `dlbench run SUITE --cluster ADDRESS` (nodes.py: connecting and choosing nodes; agent.py:
the node-side part; api.py: the driver; section.py: the machines side by side)."""
