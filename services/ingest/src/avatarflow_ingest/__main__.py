from avatarflow_runtime.service import serve

from .app import create_app
from .settings import IngestSettings

settings = IngestSettings()
serve(create_app(settings), settings)
