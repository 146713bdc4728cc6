"""manyview-selfeval's benchmarks: ``any_step`` (:mod:`manyview_selfeval.benchmarks.any_step`)."""
