from tienda.platform.migrations import run_env
from tienda.search.models import Base

run_env(Base.metadata, module="search")
