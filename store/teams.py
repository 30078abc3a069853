"""Teams and their API keys.

A key is "glk_" and 43 random URL-safe characters. Only its SHA-256 is stored, so a key is shown
once, when it is made. Looking a key up by its hash needs no constant-time comparison: the
attacker controls the input of the hash, not which stored hash it is compared with.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store import orm
from store.errors import Conflict, NotFound

KEY_PREFIX = "glk_"
DEFAULT_TEAM = "default"


@dataclass(frozen=True)
class Team:
    id: str
    name: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_team(session: Session, *, name: str) -> Team:
    """Raise Conflict when the name is taken."""
    row = orm.Team(name=name)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise Conflict(f"team {name!r} exists", field="name") from None
    return Team(id=row.id, name=row.name)


def get_team_by_name(session: Session, *, name: str) -> Team | None:
    row = session.scalars(select(orm.Team).where(orm.Team.name == name)).one_or_none()
    return Team(id=row.id, name=row.name) if row else None


def create_api_key(session: Session, *, team_id: str) -> str:
    """Make a key for the team and return it in plain text: the only time it can be read."""
    if session.get(orm.Team, team_id) is None:
        raise NotFound(f"team {team_id} not found")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(orm.ApiKey(team_id=team_id, prefix=key[:12], key_hash=hash_key(key)))
    session.flush()
    return key


def revoke_api_key(session: Session, *, key: str) -> bool:
    """Revoke a key; False when there is no such live key."""
    query = select(orm.ApiKey).where(
        orm.ApiKey.key_hash == hash_key(key), orm.ApiKey.revoked_at.is_(None)
    )
    row = session.scalars(query).one_or_none()
    if row is None:
        return False
    row.revoked_at = orm.utcnow()
    return True


def authenticate(session: Session, *, key: str) -> Team | None:
    """The team of a live (not revoked) key, or None."""
    if not key.startswith(KEY_PREFIX):
        return None
    query = (
        select(orm.Team.id, orm.Team.name)
        .join(orm.ApiKey, orm.ApiKey.team_id == orm.Team.id)
        .where(orm.ApiKey.key_hash == hash_key(key), orm.ApiKey.revoked_at.is_(None))
    )
    row = session.execute(query).one_or_none()
    return Team(id=row.id, name=row.name) if row else None


def ensure_default_team_and_key(session: Session) -> str | None:
    """For the embedded `run`: on the first start make team "default" and return a key for it.

    Returns None on every later start (the key was shown then), and also when another process
    starting at the same moment won the race.
    """
    if get_team_by_name(session, name=DEFAULT_TEAM) is not None:
        return None
    try:
        team = create_team(session, name=DEFAULT_TEAM)
    except Conflict:
        return None
    return create_api_key(session, team_id=team.id)
