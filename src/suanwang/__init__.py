"""suanwang (算网): a computing-power network scheduler and planner for 东数西算 (East Data, West Computing).

Layers, bottom to top: atlas (data) -> network -> workload -> policy -> scheduler -> sim / service -> report / cli.
"""

__version__ = "0.1.0"
