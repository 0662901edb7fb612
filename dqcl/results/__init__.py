"""Results: the SQLite store every run lands in (`store`), continual-learning summaries of a
score matrix (`cl_metrics`), and the published tables (`leaderboard`) and figures (`plots`).

It reads stored JSON only, so it sits below the training code in the imports even though it
comes last in the data flow: a study writes to its store.
"""
