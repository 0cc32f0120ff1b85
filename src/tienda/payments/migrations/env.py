from tienda.payments.models import Base
from tienda.platform.migrations import run_env

run_env(Base.metadata, module="payments")
