"""manyview-digits3: the demo dataset ``digits3`` (digits as images, eSpeak NG speech and
text, built offline) and its run configurations, including ``demo`` (``manyview demo``).

Importing the package imports nothing heavy; :mod:`manyview_digits3.datasets.digits3` loads
torch, and building the dataset loads scikit-learn and manyview-speech's synthesis.
"""

__version__ = "0.1.0"
