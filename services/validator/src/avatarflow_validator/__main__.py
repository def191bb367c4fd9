from avatarflow_runtime.service import serve

from .app import create_app
from .settings import ValidatorSettings

settings = ValidatorSettings()
serve(create_app(settings), settings)
