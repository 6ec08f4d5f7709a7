"""The execution of units (a run, a study's tuning and evaluation): from the result cache,
in this process, in local processes or as Ray tasks (:mod:`.runner`), and the cache of
results as strict JSON files (:mod:`.cache`)."""
