"""Cross-cutting reliability and security suite (issue 7): crashes, faults, bad input, secrets."""
