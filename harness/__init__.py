"""herdlab's real side and its command line: the composition root over ``sim`` and ``reports``."""
