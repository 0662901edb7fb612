"""The Cellpose network: Cellpose 3's CPnet (`resnet`), the net dqcl trains and its loss (`model`), flow targets (`flows`), masks from flows (`masks`)."""
