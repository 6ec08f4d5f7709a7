"""One run: its settings and their checks, the network, the methods, training and
evaluation, the measures of one run's memory, and the record of the code that made it.

Nothing here knows how runs are executed or combined: :mod:`..execution` runs units,
:mod:`..designs` plans many runs, :mod:`..reports` turns results into tables and figures.
"""
