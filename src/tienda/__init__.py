"""Tienda: an e-commerce backend that runs as one process or as microservices."""

__version__ = "0.1.0"
