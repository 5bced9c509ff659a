"""espnow-sec: Python tooling for encrypted ESP-NOW networks.

protocol/  pure reference implementation (no I/O), the second implementation the C code must match
air/       the simulated ESP-NOW radio (a separate process)
runner/    starts an air and host nodes, interleaves their logs, scripted demo
"""

__version__ = "0.1.0"
