"""The batch planner: one LP over (job class, site, start slot), solved with HiGHS.

`batch.py` is the entry point (`BatchOptimizer`); `classes` groups jobs and applies the hard rules, `columns`
builds candidate (class, site, slot) columns, `lp` solves the LP by column generation, `round` rounds and
repairs it into whole jobs, `mip` runs the whole-job integer program under a time limit and `search` is a
bounded local search for small windows.
"""

from suanwang.scheduler.optimize.batch import BatchOptimizer, OptimizerConfigError, Plan
from suanwang.scheduler.optimize.classes import static_mask

__all__ = ["BatchOptimizer", "OptimizerConfigError", "Plan", "static_mask"]
