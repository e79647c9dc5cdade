"""The live platform: REST API, database, auth, scheduling loop and executors.

from suanwang.service import ServiceConfig, Service, create_app
app = create_app(Service(ServiceConfig(db_url="sqlite:///suanwang.db", admin_token="...")))
"""

from suanwang.service.api import create_app
from suanwang.service.config import ServiceConfig
from suanwang.service.runtime import Service

__all__ = ["Service", "ServiceConfig", "create_app"]
