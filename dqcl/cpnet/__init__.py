"""The Cellpose network: CPnet and its loss (`model`), flow targets (`flows`), masks from flows (`masks`)."""
