"""The core's built-in plugins. Each module registers through the same hooks as any plugin,
with factories given as ``"module:attr"`` strings so that listing them imports no torch."""
