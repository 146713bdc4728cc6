"""manyview-diffusion's benchmarks."""
