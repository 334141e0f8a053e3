"""Speed benchmarks, run side by side with peer SIP stacks (`python -m benchmarks`)."""
