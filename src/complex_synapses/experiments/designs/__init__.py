"""Designs over many runs: a comparison over seeds (:mod:`.compare`), a matrix of
methods and protocols (:mod:`.matrix`), a sweep from a TOML file (:mod:`.sweep`), the
tuner (:mod:`.tuning`) and the registered study (:mod:`.study`). Each builds its runs'
settings, hands them to :mod:`..execution`, and summarises through :mod:`..reports`."""
