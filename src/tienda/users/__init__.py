"""Users: registration, login with rotating refresh tokens, password reset, profiles, addresses."""
