"""Domains, users and their HA1s: the `AccountStore` half of both backends.

Written once in the SQL SQLite and PostgreSQL both accept (see `sql_tables.py`).
"""

from __future__ import annotations

from sipline.storage.base import DuplicateError, NotFoundError, StoreError, User, compute_ha1s
from sipline.storage.sql_tables import IntegrityError, SqlTables

__all__ = ["AccountTables"]


class AccountTables(SqlTables):
    """Domains are lower-case; user names are kept as given (RFC 3261 §19.1.4)."""

    # --- domains --------------------------------------------------------------------------

    def add_domain(self, name: str) -> None:
        name = name.lower()
        try:
            with self._write() as db:
                db.execute("INSERT INTO domains(name) VALUES (?)", (name,))
        except IntegrityError:
            raise DuplicateError(f"domain {name} exists already") from None

    def list_domains(self) -> list[str]:
        return [str(r[0]) for r in self._query("SELECT name FROM domains ORDER BY name")]

    def has_domain(self, name: str) -> bool:
        return bool(self._query("SELECT 1 FROM domains WHERE name = ?", (name.lower(),)))

    def remove_domain(self, name: str) -> None:
        name = name.lower()
        try:
            with self._write() as db:
                if db.execute("DELETE FROM domains WHERE name = ?", (name,)).rowcount == 0:
                    raise NotFoundError(f"no domain {name}")
        except IntegrityError:
            raise StoreError(f"domain {name} still has users; delete them first") from None

    # --- users ----------------------------------------------------------------------------

    def add_user(self, username: str, domain: str, password: str) -> User:
        domain = domain.lower()
        ha1s = compute_ha1s(username, domain, password)
        try:
            with self._write() as db:
                if not db.execute("SELECT 1 FROM domains WHERE name = ?", (domain,)).fetchone():
                    raise NotFoundError(f"no domain {domain}")
                db.execute("INSERT INTO users(username, domain) VALUES (?, ?)", (username, domain))
                db.executemany(
                    "INSERT INTO credentials(username, domain, algorithm, ha1) VALUES (?,?,?,?)",
                    [(username, domain, algo, value) for algo, value in ha1s.items()],
                )
        except IntegrityError:
            raise DuplicateError(f"user {username}@{domain} exists already") from None
        return User(username, domain, ha1s)

    def get_user(self, username: str, domain: str) -> User | None:
        domain = domain.lower()
        rows = self._query(
            "SELECT u.username, c.algorithm, c.ha1 FROM users u LEFT JOIN credentials c"
            " ON c.username = u.username AND c.domain = u.domain"
            " WHERE u.username = ? AND u.domain = ?",
            (username, domain),
        )
        if not rows:
            return None
        return User(username, domain, {str(r[1]): str(r[2]) for r in rows if r[1] is not None})

    def count_users(self) -> int:
        return int(self._query("SELECT count(*) FROM users")[0][0])

    def list_users(self, domain: str | None = None) -> list[User]:
        sql = (
            "SELECT u.username, u.domain, c.algorithm, c.ha1 FROM users u LEFT JOIN credentials c"
            " ON c.username = u.username AND c.domain = u.domain"
        )
        args: tuple[str, ...] = ()
        if domain is not None:
            sql += " WHERE u.domain = ?"
            args = (domain.lower(),)
        users: dict[tuple[str, str], dict[str, str]] = {}
        for username, dom, algo, value in self._query(sql, args):
            ha1s = users.setdefault((str(username), str(dom)), {})
            if algo is not None:
                ha1s[str(algo)] = str(value)
        return [
            User(u, d, h) for (u, d), h in sorted(users.items(), key=lambda i: (i[0][1], i[0][0]))
        ]

    def set_password(self, username: str, domain: str, password: str) -> None:
        domain = domain.lower()
        ha1s = compute_ha1s(username, domain, password)
        with self._write() as db:
            found = db.execute(
                "SELECT 1 FROM users WHERE username = ? AND domain = ?", (username, domain)
            ).fetchone()
            if not found:
                raise NotFoundError(f"no user {username}@{domain}")
            db.execute(
                "DELETE FROM credentials WHERE username = ? AND domain = ?", (username, domain)
            )
            db.executemany(
                "INSERT INTO credentials(username, domain, algorithm, ha1) VALUES (?,?,?,?)",
                [(username, domain, algo, value) for algo, value in ha1s.items()],
            )

    def remove_user(self, username: str, domain: str) -> None:
        domain = domain.lower()
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM users WHERE username = ? AND domain = ?", (username, domain)
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"no user {username}@{domain}")

    def credentials_version(self) -> int:
        return int(self._query("SELECT n FROM credentials_version")[0][0])

    def lookup_ha1(self, username: str, realm: str, algorithm: str) -> str | None:
        rows = self._query(
            "SELECT ha1 FROM credentials WHERE username = ? AND domain = ? AND algorithm = ?",
            (username, realm.lower(), algorithm.upper()),
        )
        return str(rows[0][0]) if rows else None
