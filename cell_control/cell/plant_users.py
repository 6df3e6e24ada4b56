"""Users of the plant gateway: a password file with salted scrypt hashes, three roles, and who may do what.

The file has one user a line, `name role scrypt$n$r$p$salt$hash` (hex salt and hash), and holds no
plain-text password. It is read at every login, so `cell-control users add` takes effect without a
restart. Roles are ordered: a viewer reads and subscribes, an operator may also call the cell's
commands, an engineer may also change the recipe.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROLES = ('viewer', 'operator', 'engineer')   # each may do what the ones before it may
COMMAND_ROLE = 'operator'
RECIPE_ROLE = 'engineer'
NAME_PATTERN = re.compile(r'[A-Za-z0-9_.-]{1,64}')
MIN_PASSWORD_LENGTH = 8
SCRYPT_N, SCRYPT_R, SCRYPT_P, SALT_BYTES, KEY_BYTES = 2 ** 14, 8, 1, 16, 32


class UserFileError(ValueError):
    """The password file, a user name, role or password that cannot be used; the message names it."""


@dataclass(frozen=True)
class User:
    name: str
    role: str


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode('utf-8'), salt=salt, n=n, r=r, p=p, dklen=KEY_BYTES,
                          maxmem=256 * 1024 * 1024)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f'scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${key.hex()}'


def verify_password(password: str, stored: str) -> bool:
    scheme, n, r, p, salt, key = stored.split('$')
    if scheme != 'scrypt':
        raise UserFileError(f'password hash scheme {scheme!r} is not scrypt')
    return hmac.compare_digest(_scrypt(password, bytes.fromhex(salt), int(n), int(r), int(p)), bytes.fromhex(key))


# Checked against when the user name is unknown, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = hash_password(secrets.token_hex(16))


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise UserFileError(f'user name {name!r} is not 1-64 letters, digits, _, . or -')
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserFileError(f'role {role!r} is not one of {", ".join(ROLES)}')
    return role


def may(role: str, needed: str) -> bool:
    """Whether `role` includes the rights of `needed` (viewer < operator < engineer)."""
    return ROLES.index(check_role(role)) >= ROLES.index(check_role(needed))


class UserFile:
    """The password file; every method reads it afresh, writes replace it atomically (mode 0600)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def _entries(self) -> dict[str, tuple[str, str]]:
        try:
            text = self.path.read_text(encoding='utf-8')
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as error:
            raise UserFileError(f'{self.path}: cannot read the password file ({error})') from None
        entries = {}
        for number, line in enumerate(text.splitlines(), start=1):
            fields = line.split()
            if not fields or line.startswith('#'):
                continue
            if len(fields) != 3 or fields[2].count('$') != 5:
                raise UserFileError(f'{self.path}:{number}: expected "name role scrypt$n$r$p$salt$hash"')
            name, role, stored = fields
            try:
                entries[check_name(name)] = (check_role(role), stored)
            except UserFileError as error:
                raise UserFileError(f'{self.path}:{number}: {error}') from None
        return entries

    def users(self) -> list[User]:
        return [User(name, role) for name, (role, _) in sorted(self._entries().items())]

    def add(self, name: str, role: str, password: str) -> User:
        """Add a user or replace their role and password."""
        check_name(name)
        check_role(role)
        if len(password) < MIN_PASSWORD_LENGTH:
            raise UserFileError(f'password for {name!r} is shorter than {MIN_PASSWORD_LENGTH} characters')
        entries = self._entries()
        entries[name] = (role, hash_password(password))
        self._write(entries)
        return User(name, role)

    def remove(self, name: str) -> None:
        entries = self._entries()
        if entries.pop(name, None) is None:
            raise UserFileError(f'no user {name!r} in {self.path}')
        self._write(entries)

    def authenticate(self, name: str, password: str) -> User | None:
        """Return the user if the name is known and the password matches, else None."""
        role, stored = self._entries().get(name, (None, _DUMMY_HASH))
        if not verify_password(password, stored) or role is None:
            return None
        return User(name, role)

    def _write(self, entries: dict[str, tuple[str, str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lines = ['# cell_control plant gateway users: name role scrypt hash (cell-control users)']
        lines += [f'{name} {role} {stored}' for name, (role, stored) in sorted(entries.items())]
        handle, temporary = tempfile.mkstemp(prefix='.users-', dir=self.path.parent)
        try:
            with os.fdopen(handle, 'w', encoding='utf-8') as file:
                file.write('\n'.join(lines) + '\n')
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)   # mkstemp made it 0600
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
