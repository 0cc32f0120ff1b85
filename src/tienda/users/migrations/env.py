from tienda.platform.migrations import run_env
from tienda.users.models import Base

run_env(Base.metadata, module="users")
