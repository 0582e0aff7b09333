"""Handles → local directories: resolvers, the cache, downloads and archives.

Nothing in this package imports TensorFlow.
"""
