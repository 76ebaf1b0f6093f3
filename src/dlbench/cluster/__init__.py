"""Cases on a Ray cluster, for `dlbench run SUITE --cluster ADDRESS` (its options live with `run`, in
runs/command.py): nodes.py connects and chooses nodes, worker.py is the actor on each node, api.py the driver.
The machines side by side in a report: report/machines.py."""
