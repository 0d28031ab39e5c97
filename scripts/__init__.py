"""Developer scripts (`python -m scripts.bench`)."""
