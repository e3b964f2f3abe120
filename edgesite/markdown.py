"""Markdown to HTML: markdown-it-py with the extensions authors of Hugo and MkDocs expect.

Tables, strikethrough, footnotes, task lists, definition lists, admonitions (``!!! note``),
heading ids with a table of contents, math as KaTeX-ready markup, code highlighted by pygments
(a fixed set of lexers, imported here so the isolate snapshot holds them), and Hugo-style
shortcodes ``{{< name key="value" >}}`` rendered by a callback. Pure: runs in the isolate.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from markdown_it import MarkdownIt
from mdit_py_plugins.admon import admon_plugin
from mdit_py_plugins.anchors import anchors_plugin
from mdit_py_plugins.deflist import deflist_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.footnote import footnote_plugin
from mdit_py_plugins.tasklists import tasklists_plugin
from pygments import highlight as pygments_highlight
from pygments.formatters.html import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers.c_cpp import CLexer, CppLexer
from pygments.lexers.css import CssLexer
from pygments.lexers.data import JsonLexer, YamlLexer
from pygments.lexers.diff import DiffLexer
from pygments.lexers.go import GoLexer
from pygments.lexers.html import HtmlLexer, XmlLexer
from pygments.lexers.javascript import JavascriptLexer, TypeScriptLexer
from pygments.lexers.jvm import JavaLexer
from pygments.lexers.markup import MarkdownLexer
from pygments.lexers.configs import IniLexer, NginxConfLexer, TOMLLexer
from pygments.lexers.python import PythonConsoleLexer, PythonLexer
from pygments.lexers.rust import RustLexer
from pygments.lexers.shell import BashLexer, BashSessionLexer
from pygments.lexers.sql import SqlLexer
from pygments.lexers.templates import HtmlDjangoLexer

LEXERS: dict[str, type[Lexer]] = {
    "python": PythonLexer, "py": PythonLexer, "pycon": PythonConsoleLexer,
    "bash": BashLexer, "sh": BashLexer, "shell": BashLexer, "console": BashSessionLexer,
    "javascript": JavascriptLexer, "js": JavascriptLexer, "typescript": TypeScriptLexer, "ts": TypeScriptLexer,
    "json": JsonLexer, "yaml": YamlLexer, "yml": YamlLexer, "toml": TOMLLexer, "ini": IniLexer,
    "html": HtmlLexer, "xml": XmlLexer, "css": CssLexer, "jinja": HtmlDjangoLexer, "django": HtmlDjangoLexer,
    "rust": RustLexer, "rs": RustLexer, "go": GoLexer, "c": CLexer, "cpp": CppLexer, "c++": CppLexer,
    "java": JavaLexer, "sql": SqlLexer, "diff": DiffLexer, "markdown": MarkdownLexer, "md": MarkdownLexer,
    "nginx": NginxConfLexer,
}
_FORMATTER = HtmlFormatter(nowrap=True)
_SHORTCODE_OR_ESCAPE = re.compile(
    r"\{\{<\s*/\*(?P<escaped>.*?)\*/\s*>\}\}"
    r"|\{\{<\s*(?P<name>[\w-]+)(?P<args>(?:\s+[\w-]+=(?:\"[^\"]*\"|'[^']*'|[^\s>]+))*)\s*/?>\}\}", re.S)
_FENCE = re.compile(r"^([ \t]{0,3})(`{3,}|~{3,})[^\n]*\n.*?(?:^[ \t]{0,3}\2[`~]*[ \t]*$|\Z)", re.M | re.S)
_INLINE_CODE = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.S)
_ARG = re.compile(r"([\w-]+)=(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+))")
_PLACEHOLDER = "\x02SC{}\x03"

Shortcode = Callable[[str, dict[str, str]], str]


def highlight_code(code: str, lang: str, attrs: str = "") -> str:
    """HTML for a fenced code block; an unknown language is escaped, not highlighted."""
    lexer = LEXERS.get(lang.strip().lower())
    if lexer is None:
        cls = f' class="language-{html.escape(lang)}"' if lang else ""
        return f"<pre><code{cls}>{html.escape(code)}</code></pre>\n"
    spans = pygments_highlight(code, lexer(), _FORMATTER)
    return f'<pre class="highlight"><code class="language-{html.escape(lang.strip().lower())}">{spans}</code></pre>\n'


def _new_parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True, "typographer": False, "highlight": highlight_code})
    md.enable(["table", "strikethrough"])
    md.use(footnote_plugin).use(tasklists_plugin).use(deflist_plugin).use(admon_plugin)
    md.use(anchors_plugin, min_level=1, max_level=4, permalink=False)
    md.use(dollarmath_plugin, double_inline=True)
    return md


_PARSER = _new_parser()


@dataclass
class Rendered:
    html: str
    toc: list[dict[str, Any]] = field(default_factory=list)


def _code_spans(text: str) -> list[tuple[int, int]]:
    """Where fenced code blocks and inline code spans are (shortcodes are not expanded there)."""
    spans = [m.span() for m in _FENCE.finditer(text)]
    for m in _INLINE_CODE.finditer(text):
        if not any(a <= m.start() < b for a, b in spans):
            spans.append(m.span())
    return spans


def expand_shortcodes(text: str, shortcode: Shortcode | None, outputs: list[str]) -> str:
    """Replace each ``{{< name k="v" >}}`` outside code by a placeholder for its HTML, and
    each escaped ``{{</* name */>}}`` by the literal ``{{< name >}}`` text (in code too)."""
    if "{{<" not in text:
        return text
    code = _code_spans(text)

    def swap(match: re.Match[str]) -> str:
        in_code = any(a <= match.start() < b for a, b in code)
        if match.group("escaped") is not None:
            literal = "{{<" + match.group("escaped") + ">}}"
            if in_code:
                return literal
            outputs.append(html.escape(literal, quote=False))
            return _PLACEHOLDER.format(len(outputs) - 1)
        if in_code or shortcode is None:
            return match.group(0)
        args = {m.group(1): next(g for g in m.groups()[1:] if g is not None) for m in _ARG.finditer(match.group("args"))}
        outputs.append(shortcode(match.group("name"), args))
        return _PLACEHOLDER.format(len(outputs) - 1)

    return _SHORTCODE_OR_ESCAPE.sub(swap, text)


def render_markdown(text: str, shortcode: Shortcode | None = None) -> Rendered:
    """Render Markdown. ``shortcode(name, args)`` returns the HTML of each ``{{< >}}`` call."""
    outputs: list[str] = []
    text = expand_shortcodes(text, shortcode, outputs)
    tokens = _PARSER.parse(text)
    toc = []
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.tag in ("h2", "h3", "h4"):
            inline = tokens[i + 1]
            title = "".join(c.content for c in (inline.children or []) if c.type in ("text", "code_inline"))
            toc.append({"level": int(token.tag[1]), "id": str(token.attrs.get("id", "")), "title": title})
    body = _PARSER.renderer.render(tokens, _PARSER.options, {})
    for i, out in enumerate(outputs):
        marker = _PLACEHOLDER.format(i)
        body = body.replace(f"<p>{marker}</p>", out).replace(marker, out)
    return Rendered(html=body, toc=toc)


def toc_html(items: list[dict[str, Any]]) -> str:
    """Nested ``<ul>`` of headings, or an empty string when there are none."""
    if not items:
        return ""
    out: list[str] = []
    base = min(item["level"] for item in items)
    depth = 0
    for item in items:
        level = item["level"] - base + 1
        if level > depth:
            out.append("<ul>" * (level - depth))
        elif level < depth:
            out.append("</li></ul>" * (depth - level) + "</li>")
        elif out:
            out.append("</li>")
        depth = level
        out.append(f'<li><a href="#{html.escape(item["id"])}">{html.escape(item["title"])}</a>')
    out.append("</li></ul>" * depth)
    return "".join(out)
