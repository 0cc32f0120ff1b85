"""Orders: built from the caller's cart, priced, and carried through the checkout saga."""
