"""Tools that work on models: inspect, the op scan."""
