"""``mint-token``: a development JWT signed with the services' key."""

from __future__ import annotations

import argparse
import sys


def mint_token_command(args: argparse.Namespace) -> int:
    from avatarflow_runtime.auth import mint_token
    from avatarflow_runtime.settings import InsecureSecret, ServiceSettings

    settings = ServiceSettings()
    try:  # a token signed with a key no service accepts would only fail later with 401
        settings.require_token_secret()
    except InsecureSecret as exc:
        print(f"mint-token: {exc}", file=sys.stderr)
        return 2
    print(
        mint_token(
            settings.jwt_secret.get_secret_value(),
            subject=args.sub,
            space_id=args.space,
            role=args.role,
            ttl_s=args.ttl,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
    )
    return 0
