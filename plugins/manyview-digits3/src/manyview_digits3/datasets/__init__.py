"""The ``digits3`` dataset (:mod:`manyview_digits3.datasets.digits3`)."""
