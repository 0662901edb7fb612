"""Specs: their schema (`schema`), reading TOML (`parse`), expansion into runs (`expand`),
and the strategy registry a spec's ``[strategies]`` are checked against (`strategies`)."""
