"""wgedge: a userspace WireGuard for ARM routers (sans-I/O core + Linux I/O layer)."""

__version__ = "0.1.0"
