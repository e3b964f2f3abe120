"""edgesite: Markdown + Jinja2 sites rendered on demand inside WebAssembly isolates at edge nodes,
cached on each node's disk and purged exactly when their inputs change."""

from .errors import CompileError, EdgesiteError, FrontMatterError, IsolateError, RenderError, SiteConfigError

__version__ = "0.1.0"
__all__ = ["CompileError", "EdgesiteError", "FrontMatterError", "IsolateError", "RenderError", "SiteConfigError", "__version__"]
