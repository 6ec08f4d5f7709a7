"""Tables and figures made from results: summaries over seeds (:mod:`.stats`), text,
Markdown and CSV tables (:mod:`.tables`), figures (:mod:`.figures`). Reports read
results; they run nothing."""
