"""Registers manyview-selfeval's entries (entry-point group ``manyview``).

Factories are ``"module:Attr"`` strings, so ``manyview list`` imports neither torch nor
diffusers.
"""

from __future__ import annotations
