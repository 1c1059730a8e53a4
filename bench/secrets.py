"""Passwords stay out of everything bench and Hydra write.

The robust place to stop a password is before Hydra composes the config: Hydra itself writes
the overrides to `.hydra/overrides.yaml`, `.hydra/hydra.yaml` and `.hydra/config.yaml`, bench
logs the resolved config as MLflow params and artifact, and sweeps log their storage URL. So
`hide_passwords(argv)` rewrites every URL with a password in an override's value
(`key=scheme://user:password@host...` or `...?password=...`, quoted by Hydra or not, one of a
sweep's values or not) into the URL without the password and hands the password to its library
through the environment variable that library already reads:

- `postgresql[+driver]://` (MLflow's SQL store, Optuna's RDB storage): `PGPASSWORD`, read by
  libpq (psycopg2 and psycopg 3) for every connection;
- `http(s)://` (an MLflow tracking server): `MLFLOW_TRACKING_USERNAME` / `_PASSWORD`, sent by
  MLflow's client as HTTP basic auth.

`hide_env_passwords` does the same for $MLFLOW_TRACKING_URI, the default of `tracking.uri`.
A password in a config file or in another `${oc.env:...}` of a whole URL is not seen here; `mask` is
the second line of defence for text bench prints or logs (console, error messages).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from bench.errors import ConfigError

MASK = "***"
# scheme://user:password@ -> the password group; the user part may be empty (`:pw@`). The
# password runs to the LAST `@` before a space, a quote or the next URL, so one that holds an
# unencoded `@`, `/`, `?` or `#` is masked whole; digits then `/?#` are a port (`host:5000/a@b`).
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][\w+.-]*://[^/\s:@]*:)(?!\d+[/?#])"
                           r"(?P<pw>(?:(?!://)[^\s'\"])+)(?=@)")
# a password given as a query parameter (libpq, SQLAlchemy and MySQL drivers read these)
_QUERY_PASSWORD_NAMES = ("password", "passwd", "pwd")
_QUERY_PASSWORD = re.compile(rf"(?P<head>[?&](?:{'|'.join(_QUERY_PASSWORD_NAMES)})=)"
                             r"(?P<pw>[^&#\s'\"]+)", re.IGNORECASE)
# one URL inside an override's value, which Hydra may quote ('...', "...") or list (a,b, [a,b])
_URL = re.compile(r"\b[a-zA-Z][\w+.-]*://[^\s,'\"\[\]()]+")
# environment variables whose values are secrets: masked wherever they appear in text
SECRET_ENV = ("PGPASSWORD", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
# the variables a worker on another host needs to reach the stores (bench.launchers forwards)
FORWARDED_ENV_PREFIXES = ("BENCH_", "MLFLOW_", "PG")
_EXPORTED: set[str] = set()  # variables set by hide_passwords in this process
_env_tracking_uri: str | None = None  # see tracking_uri_from_env


def mask(text: str) -> str:
    """`text` with URL passwords (`scheme://user:***@`) and secret env values replaced by ***."""
    text = _URL_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    text = _QUERY_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    for name in SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 4:  # a 1-3 character "secret" would mask ordinary text
            text = text.replace(value, MASK)
    return text


def hide_passwords(argv: Sequence[str]) -> list[str]:
    """`argv` with the password of every URL of a `key=URL` override (bench, bench score) or
    of an option (`--tracking-uri URL`, `--tracking-uri=URL`: report, register) moved into the
    environment.

    Raises ConfigError for a password in a URL whose library reads no password variable, and
    for two PostgreSQL URLs with different passwords (use ~/.pgpass for those).
    """
    out: list[str] = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and _has_password(value) and (not arg.startswith("-") or arg.startswith("--")):
            value = _URL.sub(lambda m, key=key: _hide(key, m[0]), value)  # key=URL, --opt=URL
            arg = f"{key}{sep}{value}"
        elif _has_password(arg) and out and out[-1].startswith("--"):  # --opt URL
            arg = _URL.sub(lambda m, key=out[-1]: _hide(key, m[0]), arg)
        out.append(arg)
    return out


def _has_password(text: str) -> bool:
    return bool(_URL_PASSWORD.search(text) or _QUERY_PASSWORD.search(text))


def hide_env_passwords(argv: Sequence[str]) -> None:
    """$MLFLOW_TRACKING_URI, the default of `tracking.uri`, made ready for a run: an empty
    value is removed (MLflow reads it as unset), and unless `argv` sets tracking.uri, its
    password is moved out as `hide_passwords` moves a command line's (the run logs its
    resolved config). `tracking_uri_from_env` then returns what the run will use."""
    global _env_tracking_uri
    url = os.environ.get("MLFLOW_TRACKING_URI")
    if url is not None and not url.strip():
        del os.environ["MLFLOW_TRACKING_URI"]
        return
    if url is None or any(arg.split("=", 1)[0].lstrip("+") == "tracking.uri" for arg in argv):
        return
    if _has_password(url):
        url = _hide("$MLFLOW_TRACKING_URI", url)
        os.environ["MLFLOW_TRACKING_URI"] = url
    _env_tracking_uri = url


def tracking_uri_from_env() -> str | None:
    """The $MLFLOW_TRACKING_URI this command's runs default to (set by `hide_env_passwords`;
    None when unset, overridden on the command line, or not a bench command). Read here, not
    from the environment, which mlflow.set_tracking_uri overwrites with any run's store."""
    return _env_tracking_uri


def _hide(key: str, url: str) -> str:
    """One URL without its password (in its user part or its query); the password exported
    for its library."""
    parts = urlsplit(url)
    in_query = [value for name, value in parse_qsl(parts.query, keep_blank_values=True)
                if name.lower() in _QUERY_PASSWORD_NAMES]
    if parts.password is None and not in_query:
        _refuse_unparsed_password(key, url)
        return url
    if (parts.password is not None and in_query) or len(set(in_query)) > 1:
        raise ConfigError(f"{key}={mask(url)}: give the password once, not in both the user "
                          "part and the query")
    password = unquote(parts.password) if parts.password is not None else in_query[0]
    query = "&".join(item for item in parts.query.split("&")
                     if item.split("=", 1)[0].lower() not in _QUERY_PASSWORD_NAMES)
    scheme = parts.scheme.split("+")[0]
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    user = unquote(parts.username or "")
    if scheme in ("postgresql", "postgres"):
        _export(key, "PGPASSWORD", password)
        netloc = f"{parts.username}@{host}" if parts.username else host
    elif scheme in ("http", "https"):
        _export(key, "MLFLOW_TRACKING_PASSWORD", password)
        if user:
            _export(key, "MLFLOW_TRACKING_USERNAME", user)
        netloc = host
    else:
        raise ConfigError(
            f"{key}={mask(url)}: bench can move a password out of postgresql:// and http(s):// "
            f"URLs only; for {parts.scheme}:// give it through the environment, not the URL")
    hidden = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    _refuse_unparsed_password(key, hidden)
    return hidden


def _refuse_unparsed_password(key: str, url: str) -> None:
    """ConfigError when `url` still shows a password that URL parsing did not find: one
    holding `/`, `?` or `#` ends the host early (`u:pa/ss@host`), so no library reads it."""
    if _has_password(url):
        raise ConfigError(f"{key}={mask(url)}: the URL's password holds a character that URLs "
                          "reserve (/ ? # @); percent-encode it (/ as %2F, ? as %3F, # as %23, "
                          "@ as %40)")


def _export(key: str, name: str, value: str) -> None:
    previous = os.environ.get(name)
    if previous is not None and previous != value and name in _EXPORTED:
        raise ConfigError(f"{key}: two URLs (on the command line or in $MLFLOW_TRACKING_URI) "
                          f"carry different values for {name}; give PostgreSQL passwords in "
                          "~/.pgpass instead")
    os.environ[name] = value
    _EXPORTED.add(name)


def forwarded_environment() -> dict[str, str]:
    """The environment a job on another host needs: BENCH_*, MLFLOW_* and PG* variables."""
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}
