"""Notifications (SEED.md 5.7): e-mail and SMS to buyers and admins, from events and on request."""
