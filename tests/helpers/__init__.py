"""Shared test helpers: vectors, real binaries, GnuPG homes, network namespaces."""
