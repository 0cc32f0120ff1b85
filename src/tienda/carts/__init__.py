"""Carts: a signed-in user's or a guest's lines, priced and checked against stock as they are now."""
