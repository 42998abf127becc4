"""Training: options, the step, the schedule, checkpoints, logs, validation and the run loop."""
