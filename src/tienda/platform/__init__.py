"""Infrastructure shared by every module. No business rules, and no imports of modules."""
