"""avatarflow service runtime: the template every service is built on (see service.py, messaging.py)."""
