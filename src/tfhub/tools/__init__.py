"""Tools that work on models: inspect, exporters."""
