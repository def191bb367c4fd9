from avatarflow_runtime.service import serve

from .app import create_app
from .settings import MattingSettings

settings = MattingSettings()
serve(create_app(settings), settings)
