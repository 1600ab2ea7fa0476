"""Attack tests: fuzzing, token forgery and signals against the real HTTP server."""
