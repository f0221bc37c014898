"""Static tokens with Tinybird scopes, kept in $CAMPAIGNS_DATA_DIR/tokens.json.

Scopes: ADMIN, PIPES:READ:<pipe>, DATASOURCES:APPEND:<ds>, DATASOURCES:READ:<ds>.
Tokens are compared by SHA-256 digest with hmac.compare_digest and never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

from starlette.requests import Request

from api.errors import AuthError

__all__ = ["AuthError", "Token", "TokenStore", "authorize", "mint_jwt"]

ADMIN = "ADMIN"
VALID_SCOPE_PREFIXES = ("PIPES:READ:", "DATASOURCES:APPEND:", "DATASOURCES:READ:")


@dataclass(frozen=True)
class Token:
    name: str
    token: str
    scopes: tuple[str, ...]
    # JWTs only: parameters pinned per pipe ({"campaign_stats": {"campaign_id": "camp_1"}})
    fixed_params: dict[str, dict[str, str]] = field(default_factory=dict)
    rps: int | None = None

    def allows(self, scope: str) -> bool:
        return ADMIN in self.scopes or scope in self.scopes


def validate_scope(scope: str) -> str:
    if scope == ADMIN or (scope.startswith(VALID_SCOPE_PREFIXES) and scope.count(":") == 2
                          and scope.rsplit(":", 1)[1]):
        return scope
    raise ValueError(
        f"invalid scope {scope!r}: use ADMIN, PIPES:READ:<pipe>, DATASOURCES:APPEND:<ds> "
        "or DATASOURCES:READ:<ds>"
    )


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenStore:
    """The tokens file, re-read when it changes (so `campaigns token` works on a live server)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._by_digest: dict[bytes, Token] = {}

    # -- file ---------------------------------------------------------------
    def _read(self) -> list[Token]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        return [Token(t["name"], t["token"], tuple(t["scopes"])) for t in data.get("tokens", [])]

    def _write(self, tokens: list[Token]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        payload = {"tokens": [{"name": t.name, "token": t.token, "scopes": list(t.scopes)}
                              for t in tokens]}
        tmp.write_text(json.dumps(payload, indent=2))
        os.chmod(tmp, 0o600)
        tmp.replace(self.path)

    def _refresh(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            mtime = None
        if mtime != self._mtime:
            self._by_digest = {_digest(t.token): t for t in self._read()}
            self._mtime = mtime

    # -- operations -----------------------------------------------------------
    def tokens(self) -> list[Token]:
        with self._lock:
            return self._read()

    def ensure_admin(self, configured: str | None) -> tuple[Token, bool]:
        """The admin token: CAMPAIGNS_ADMIN_TOKEN if set, else the stored one, else a new one.
        Returns (token, created)."""
        with self._lock:
            tokens = self._read()
            others = [t for t in tokens if t.name != "admin"]
            current = next((t for t in tokens if t.name == "admin"), None)
            if configured:
                if current is None or current.token != configured:
                    current = Token("admin", configured, (ADMIN,))
                    self._write([current, *others])
                return current, False
            if current is not None:
                return current, False
            current = Token("admin", "p." + secrets.token_urlsafe(32), (ADMIN,))
            self._write([current, *others])
            return current, True

    def create(self, name: str, scopes: list[str]) -> Token:
        checked = tuple(validate_scope(s) for s in scopes)
        with self._lock:
            tokens = self._read()
            if any(t.name == name for t in tokens):
                raise ValueError(f"a token named {name!r} exists already")
            token = Token(name, "p." + secrets.token_urlsafe(32), checked)
            self._write([*tokens, token])
            return token

    def revoke(self, name: str) -> bool:
        with self._lock:
            tokens = self._read()
            kept = [t for t in tokens if t.name != name]
            if len(kept) == len(tokens):
                return False
            self._write(kept)
            return True

    def lookup(self, presented: str) -> Token | None:
        with self._lock:
            self._refresh()
            wanted = _digest(presented)
            found = None
            for digest, token in self._by_digest.items():
                if hmac.compare_digest(digest, wanted):
                    found = token
            return found

    def admin(self) -> Token | None:
        """The admin token (the JWT signing key), from the cached file contents."""
        with self._lock:
            self._refresh()
            return next((t for t in self._by_digest.values() if t.name == "admin"), None)


def presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return request.query_params.get("token") or None


def _looks_like_jwt(presented: str) -> bool:
    return presented.startswith("eyJ") and presented.count(".") == 2


def decode_jwt(store: TokenStore, presented: str) -> Token | None:
    """A Tinybird-style JWT (HS256, signed with the admin token, `exp` required):
    `scopes: [{"type": "PIPES:READ", "resource": <pipe>, "fixed_params": {...}}]` and an
    optional `limits: {"rps": n}`. None when it does not verify."""
    import jwt  # PyJWT

    admin = store.admin()
    if admin is None:
        return None
    try:
        claims = jwt.decode(presented, admin.token, algorithms=["HS256"],
                            options={"require": ["exp"]})
    except jwt.PyJWTError:
        return None
    scopes: list[str] = []
    fixed: dict[str, dict[str, str]] = {}
    for entry in claims.get("scopes") or []:
        if not isinstance(entry, dict) or entry.get("type") != "PIPES:READ":
            continue  # JWTs grant pipe reads only, as in Tinybird
        resource = str(entry.get("resource", ""))
        scopes.append(f"PIPES:READ:{resource}")
        params = entry.get("fixed_params") or {}
        if isinstance(params, dict):
            fixed[resource] = {str(k): str(v) for k, v in params.items()}
    limits = claims.get("limits") or {}
    rps = limits.get("rps") if isinstance(limits, dict) else None
    return Token(name=f"jwt:{claims.get('name', 'unnamed')}", token="", scopes=tuple(scopes),
                 fixed_params=fixed, rps=int(rps) if isinstance(rps, int) and rps > 0 else None)


def mint_jwt(store: TokenStore, name: str, pipes: list[str], fixed: dict[str, str],
             ttl_seconds: int, rps: int | None = None) -> str:
    import time

    import jwt  # PyJWT

    admin = store.admin()
    if admin is None:
        raise ValueError("no admin token yet: start the server once, or set CAMPAIGNS_ADMIN_TOKEN")
    claims: dict[str, object] = {
        "name": name,
        "exp": int(time.time()) + ttl_seconds,
        "scopes": [{"type": "PIPES:READ", "resource": pipe, "fixed_params": fixed}
                   for pipe in pipes],
    }
    if rps:
        claims["limits"] = {"rps": rps}
    return jwt.encode(claims, admin.token, algorithm="HS256")


def basic_password(request: Request) -> str | None:
    """The password of HTTP Basic auth (Postmark's webhooks carry a token there)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    _, sep, password = decoded.partition(":")
    return password if sep and password else None


def _resolve(store: TokenStore, presented: str) -> Token | None:
    if _looks_like_jwt(presented):
        return decode_jwt(store, presented)
    return store.lookup(presented)


def token_allows(store: TokenStore, presented: str | None, scope: str) -> bool:
    """Whether `presented` is a valid token with `scope` (no error: webhook receivers
    combine it with the provider's own signature)."""
    token = _resolve(store, presented) if presented else None
    return token is not None and token.allows(scope)


def authorize(store: TokenStore, request: Request, scope: str) -> Token:
    presented = presented_token(request)
    if presented is None:
        raise AuthError(401, "Token is missing: use 'Authorization: Bearer <token>' or ?token=")
    token = _resolve(store, presented)
    if token is None:
        raise AuthError(401, "Invalid token")
    if not token.allows(scope):
        raise AuthError(403, f"Forbidden: this token lacks the scope {scope}")
    return token
