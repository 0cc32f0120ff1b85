"""Catalog: categories, products with variants and images, publishing."""
