"""DDAE feature encoders over diffusers networks."""
