"""manyview-diffusion's recipes."""
