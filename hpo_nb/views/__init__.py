"""Renderers of progress snapshots and results. Only ``dashboard`` knows ipywidgets exists."""
