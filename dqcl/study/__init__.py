"""A study: its runs checked once before anything starts (`preflight`), then run and stored
(`run`) by one of the executors (`executors`: local, worker processes, Ray)."""
