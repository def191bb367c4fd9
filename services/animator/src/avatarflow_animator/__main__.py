from avatarflow_runtime.service import serve

from .app import create_app
from .settings import AnimatorSettings

settings = AnimatorSettings()
serve(create_app(settings), settings)
