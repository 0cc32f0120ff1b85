"""Every knob of the shop, read from `TIENDA_*` environment variables.

No module reads `os.environ`; they get a `Settings` object. Defaults are the embedded
development setup: SQLite files under the data dir, in-process events, in-memory cache
and rate limits, e-mail written to files.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIENDA_", extra="ignore")

    env: Literal["dev", "production", "test"] = "dev"
    services: list[str] = Field(default=[], description="Modules this process serves; empty: all.")
    data_dir: Path = Path("var")

    # Databases: one shared URL, overridable per module (database per service).
    database_url: str | None = Field(
        default=None,
        description="Shared SQLAlchemy async URL; default: a SQLite file per module under the data dir.",
    )
    users_database_url: str | None = None
    catalog_database_url: str | None = None
    search_database_url: str | None = None
    carts_database_url: str | None = None
    inventory_database_url: str | None = None
    orders_database_url: str | None = None
    payments_database_url: str | None = None
    notifications_database_url: str | None = None
    db_pool_size: int = Field(
        default=30,
        description="Connections per process and database server, kept open once made; modules on one database "
        "share them.",
    )
    db_echo: bool = False

    # Infrastructure that is embedded when unset.
    redis_url: str | None = Field(default=None, description="redis://...; unset: in-memory cache and rate limits.")
    redis_prefix: str = Field(default="tienda:", description="Prefix of every Redis key, so shops can share a server.")
    broker_url: str | None = Field(default=None, description="amqp://...; unset: in-process event bus.")
    broker_prefix: str = Field(
        default="tienda", description="Names the exchange and the queues on the broker, so shops can share one."
    )
    relay_in_process: bool | None = Field(
        default=None,
        description="Relay outbox events inside the API process. "
        "Default: yes without a broker, no with one (the worker relays).",
    )
    relay_poll_interval: float = 0.2
    outbox_retention_days: float = Field(
        default=7.0,
        gt=0,
        description="Published events are deleted from each module's outbox this long after they were published "
        "(the events still waiting are kept, whatever their age).",
    )
    outbox_prune_seconds: float = Field(
        default=3600.0, gt=0, description="How often published events past their retention are deleted."
    )

    # Auth.
    jwt_secret: SecretStr | None = None
    jwt_algorithm: str = "HS256"
    jwt_issuer: str = "tienda"
    access_token_ttl_seconds: int = 15 * 60
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    password_hash_time_cost: int = 3
    password_hash_memory_kib: int = 65536
    password_hash_parallelism: int = 4
    password_hash_concurrency: int = Field(
        default=2, description="Hashes computed at once per process; each holds the memory cost."
    )
    service_token: SecretStr | None = Field(
        default=None,
        description="Not used for calls between services: a caller mints a short-lived SERVICE token with the "
        "JWT key every service shares (see platform/http.py).",
    )

    # Calls between services (`tienda serve --service`): where a module that does not run in this process answers.
    users_url: str | None = Field(default=None, description="e.g. http://users:8000; needed where users runs apart.")
    catalog_url: str | None = Field(default=None, description="e.g. http://catalog:8000.")
    carts_url: str | None = Field(default=None, description="e.g. http://carts:8000.")
    inventory_url: str | None = Field(default=None, description="e.g. http://inventory:8000.")
    payments_url: str | None = Field(default=None, description="e.g. http://payments:8000.")
    service_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Connect, write, read and pool timeout of one call to another service."
    )
    service_retries: int = Field(
        default=2,
        ge=0,
        description="Further tries of an idempotent call to another service after a connection error, a timeout "
        "or a 502/503/504.",
    )
    service_retry_backoff_seconds: float = Field(
        default=0.1,
        ge=0,
        description="Wait before the first retry; doubled before each further one (jittered, 2 s at most).",
    )
    service_breaker_failures: int = Field(
        default=5, ge=1, description="Failed calls in a row after which calls to that service fail fast."
    )
    service_breaker_cooldown_seconds: float = Field(
        default=10.0, gt=0, description="How long calls fail fast before one trial call is let through."
    )

    # Throttling.
    login_account_limit: str = "5/15minutes"
    login_ip_limit: str = "100/15minutes"
    forgot_password_limit: str = "5/15minutes"
    otp_ttl_seconds: int = 600
    otp_max_attempts: int = 5

    # HTTP.
    max_body_bytes: int = 1024 * 1024
    cors_origins: list[str] = []
    log_json: bool | None = None
    log_level: str = "INFO"
    metrics_multiprocess_dir: Path | None = Field(
        default=None,
        description="Set by `tienda serve` with several workers, so /metrics adds up every worker's counts.",
    )

    # Mail: files under the data dir unless an SMTP URL is given.
    smtp_url: str | None = Field(
        default=None, description="smtp://user:pass@host:port; unset: .eml files in <data_dir>/mail."
    )
    mail_from: str = "Tienda <no-reply@tienda.local>"

    product_cache_ttl_seconds: float = 300.0
    listing_cache_ttl_seconds: float = 60.0
    max_image_bytes: int = Field(
        default=5 * 1024 * 1024,
        gt=0,
        description="Largest product image upload. The upload route takes bodies of this plus 64 KiB of "
        "form overhead, even when max_body_bytes is smaller.",
    )
    public_base_url: str | None = Field(
        default=None,
        max_length=512,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="Where the shop is reached, e.g. https://shop.example.com; uploaded images get URLs "
        "under it. Unset: the base URL of the request that uploaded them.",
    )
    default_currency: str = "INR"
    default_tax_rate: Decimal = Field(default=Decimal("0.18"), ge=0, le=1, description="Tax on goods, 0.18 = 18%.")
    tax_rates: dict[str, Decimal] = Field(
        default={},
        description='Per-category tax rates by category slug or id, e.g. {"books": 0.05}; a category without one '
        "takes its nearest ancestor's, else the default rate.",
    )
    shipping_fee: Decimal = Field(default=Decimal("49.00"), ge=0, description="Flat shipping fee per order.")
    free_shipping_from: Decimal | None = Field(
        default=Decimal("999.00"), ge=0, description="Discounted subtotal from which shipping is free; unset: never."
    )

    # Carts.
    cart_store: Literal["redis", "sql"] | None = Field(
        default=None, description="Where carts are kept; unset: Redis when redis_url is set, else the SQL tables."
    )
    cart_max_quantity: int = Field(default=99, ge=1, description="Most units of one line.")
    cart_max_lines: int = Field(default=100, ge=1, description="Most lines in one cart.")
    guest_cart_ttl_seconds: int = Field(
        default=30 * 24 * 3600,
        ge=60,
        description="A guest's cart (and its token) lasts this long after its last write.",
    )
    cart_purge_seconds: float = Field(
        default=3600.0, description="How often expired guest carts are deleted (SQL store)."
    )

    # Inventory.
    reservation_ttl_seconds: int = Field(default=15 * 60, description="A reservation expires unless committed.")
    reservation_sweep_seconds: float = Field(default=15.0, description="How often expired reservations are released.")
    reservations_per_statement: int = Field(
        default=100,
        ge=1,
        le=1000,
        description="On PostgreSQL, reservations of one item that a process makes at the same time go in one "
        "statement, up to this many (one lock, one commit and one published change of the row for all); 1: each "
        "alone.",
    )

    # Inventory: the Redis ("flash-sale") reservation strategy (SEED.md 7.5). The database stays the record.
    inventory_strategy: Literal["database", "redis"] = Field(
        default="database",
        description="How a reservation is checked: `database` (a guarded UPDATE of the stock row) or `redis` "
        "(a Lua script on Redis counters first, then written through to the database). `redis` needs redis_url; "
        "without it every item uses the database strategy.",
    )
    inventory_redis_items: list[str] = Field(
        default=[],
        description="Hot items reserved through Redis even when the strategy is `database`: `p_1` (every variant "
        'of the product) or `p_1/v_2`; as JSON, e.g. ["p_1/v_2"].',
    )
    inventory_redis_ttl_seconds: int = Field(
        default=600, ge=1, description="A Redis stock counter is reloaded from the database at least this often."
    )

    # Notifications: e-mail through the mailer above, SMS through a provider; failed sends retried with backoff.
    notification_max_attempts: int = Field(default=5, ge=1, description="Sends tried before a notification is FAILED.")
    notification_retry_base_seconds: float = Field(
        default=30.0, gt=0, description="Wait after the first failed send; doubled after each further one."
    )
    notification_retry_interval_seconds: float = Field(
        default=15.0, gt=0, description="How often the worker looks for notifications due to be sent again."
    )
    sms_provider: Literal["console"] = Field(
        default="console", description="Where SMS go: `console` logs them (dev); real gateways plug in here."
    )

    # Payments: gateways behind one interface; `sandbox` is built in (a page of ours plays the gateway).
    payment_provider: Literal["sandbox", "razorpay", "stripe"] = Field(
        default="sandbox", description="The gateway of `paymentMethod: PAYMENT_GATEWAY`."
    )
    sandbox_payments: bool | None = Field(
        default=None, description="Serve the sandbox gateway and its page. Default: yes, except in production."
    )
    sandbox_webhook_secret: SecretStr | None = Field(
        default=None, description="Signs the sandbox gateway's webhooks; default: derived from the JWT key."
    )
    razorpay_key_id: str | None = None
    razorpay_key_secret: SecretStr | None = None
    razorpay_webhook_secret: SecretStr | None = None
    razorpay_api_base: str = "https://api.razorpay.com"
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str = "https://api.stripe.com"
    payment_return_url: str | None = Field(
        default=None, description="Where a gateway sends the buyer back after paying; default: the order's page."
    )
    refund_retry_seconds: float = Field(default=60.0, description="How often refunds left pending are sent again.")

    # Search: an embedded tantivy index on disk, fed by catalog events.
    search_index_dir: Path | None = Field(default=None, description="Default: <data_dir>/search-index.")
    search_cache_ttl_seconds: float = Field(
        default=300.0, description="How long a search result page is kept; any index change retires it sooner."
    )

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    def database_url_for(self, module: str) -> str:
        own = getattr(self, f"{module}_database_url", None)
        if own:
            return str(own)
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / f'{module}.db'}"

    def service_url(self, module: str) -> str | None:
        """Where module `module`'s service answers, when it runs apart from this process."""
        url = getattr(self, f"{module}_url", None)
        return str(url) if url else None

    @property
    def relays_in_process(self) -> bool:
        if self.relay_in_process is not None:
            return self.relay_in_process
        return self.broker_url is None

    @property
    def json_logs(self) -> bool:
        return self.log_json if self.log_json is not None else self.env == "production"

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def search_index_path(self) -> Path:
        return (self.search_index_dir or self.data_dir / "search-index").expanduser().resolve()

    @property
    def sandbox_enabled(self) -> bool:
        if self.sandbox_payments is not None:
            return self.sandbox_payments
        return self.env != "production" or self.payment_provider == "sandbox"

    def sandbox_secret(self) -> str:
        if self.sandbox_webhook_secret is not None:
            return self.sandbox_webhook_secret.get_secret_value()
        return hmac.new(self.jwt_key().encode(), b"sandbox-webhooks", hashlib.sha256).hexdigest()

    def jwt_key(self) -> str:
        """The signing key; in dev, generated once and kept in the data dir."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        if self.env == "production":
            raise RuntimeError("TIENDA_JWT_SECRET must be set in production")
        path = self.data_dir / "jwt-secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        key = path.read_text().strip()
        self.jwt_secret = SecretStr(key)
        return key
