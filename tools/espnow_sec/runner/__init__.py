"""``espnow-sec-net``: an air plus host nodes, their logs interleaved, and a scripted demo.

logs.py   the log-line contract of the host node (tag app_main), parsed in one place (pure)
plan.py   node names, MACs, environments, stdin routing (pure)
demo.py   the demo's checks as a state machine over log lines and time (pure)
procs.py  child processes: start, read lines, write stdin, stop (I/O)
cli.py    the command: ``run`` and ``demo``
"""
