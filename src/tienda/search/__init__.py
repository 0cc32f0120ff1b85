"""Search: full-text product search on an embedded tantivy index fed by catalog events."""
