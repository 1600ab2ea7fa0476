"""The actors: supervisor, timers, orchestrator, and the runner that executes handlers."""
