"""Secrets kept out of what a job prints: its summary line, its one-line
failure, a traceback. A connection string's password (`scheme://user:PASSWORD@host`)
and the value of any key that names a secret (password, secret, token,
credential, access key: `fs.s3a.secret.key=...`, `"aws_secret_access_key": "..."`)
become `***`; everything else is left as it was written.
"""

from __future__ import annotations

import re

MASK = "***"
_URI_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*):(?P<secret>[^@\s/]+)@")
# A key whose last word names a secret (`client_secret`, `fs.s3a.secret.key`), not one that only contains it (`tokens_seen`).
_SECRET_KEY = r"[\w.-]*?(?:password|passwd|secret|token|credentials?|access[._-]?key)(?:[._-]?key)?"
_KEY_VALUE = re.compile(
    rf"(?P<head>(?P<quote>[\"']?){_SECRET_KEY}(?P=quote)\s*[=:]\s*)(?P<open>[\"']?)(?P<secret>[^\s\"',;}}&]+)", re.IGNORECASE)


def masked(text: str) -> str:
    """`text` with every secret it shows replaced by ***."""
    text = _URI_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", text)
    return _KEY_VALUE.sub(lambda m: f"{m['head']}{m['open']}{MASK}", text)
