"""One error hierarchy for edgesite: every error a user can see carries where it came from."""

from __future__ import annotations


class EdgesiteError(Exception):
    """Base of every error edgesite raises on purpose.

    ``file`` is relative to the site root where there is one; ``line`` is 1-based (0 = unknown).
    """

    kind = "error"

    def __init__(self, message: str, *, file: str = "", line: int = 0, site: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.site = site

    def where(self) -> str:
        if self.file and self.line:
            return f"{self.file}, line {self.line}"
        return self.file

    def __str__(self) -> str:
        where = self.where()
        return f"{where}: {self.message}" if where else self.message


class SiteConfigError(EdgesiteError):
    """site.toml is missing, malformed, or has a value of the wrong kind."""

    kind = "config"


class FrontMatterError(EdgesiteError):
    """A content file's front matter does not parse or has a key of the wrong type."""

    kind = "front-matter"


class CompileError(EdgesiteError):
    """The route table cannot be built: duplicate URLs, bad permalinks."""

    kind = "compile"


class RenderError(EdgesiteError):
    """A render failed: template syntax, missing template, undefined variable, worker exception.

    Raised by the pure render core in-process and in the isolate alike; in the isolate it
    crosses the boundary as the WIT ``guest-error`` record and is rebuilt on the host.
    """

    kind = "render"

    def __init__(self, message: str, *, kind: str = "render", file: str = "", line: int = 0) -> None:
        super().__init__(message, file=file, line=line)
        self.kind = kind


class IsolateError(EdgesiteError):
    """An isolate failed outside the render core: a trap, a timeout, the memory limit."""

    kind = "isolate"

    def __init__(self, message: str, *, cause: str, site: str = "") -> None:
        super().__init__(message, site=site)
        self.cause = cause  # "timeout" | "memory" | "trap" | "busy"


class PurgeError(EdgesiteError):
    """A purge request is malformed or unauthorised."""

    kind = "purge"
