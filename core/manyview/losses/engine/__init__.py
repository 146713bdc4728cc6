"""The tiled log-sum-exp engine of the InfoNCE family (moved here; split by concern next)."""
