"""Builds the users service from the platform (used by the routes and the CLI)."""

from __future__ import annotations

from datetime import timedelta

from tienda.platform.runtime import Platform
from tienda.users.service import Limits, UserService


def build_user_service(platform: Platform) -> UserService:
    s = platform.settings
    return UserService(
        clock=platform.clock,
        passwords=platform.passwords,
        tokens=platform.tokens,
        limiter=platform.limiter,
        limits=Limits(
            login_account=s.login_account_limit,
            login_ip=s.login_ip_limit,
            forgot_password=s.forgot_password_limit,
            otp_ttl=timedelta(seconds=s.otp_ttl_seconds),
            otp_max_attempts=s.otp_max_attempts,
            refresh_ttl=timedelta(seconds=s.refresh_token_ttl_seconds),
        ),
        otp_key=s.jwt_key(),
    )
