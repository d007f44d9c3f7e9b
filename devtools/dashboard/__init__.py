"""The Grafana dashboard drawn with matplotlib from real scrapes: `python -m devtools.dashboard`."""
