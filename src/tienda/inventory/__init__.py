"""Inventory: stock per product and variant, reservations that can never oversell."""
