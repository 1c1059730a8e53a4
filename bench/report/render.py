"""A small document model rendered twice: Markdown (images as files beside it) and ONE
self-contained HTML file (images embedded as base64 data URIs, no external resources).

Used by the report (`python -m bench.report`) and the dataset analysis
(`python -m bench.analyze`); neither needs a Markdown library.
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.outputs import write_whole

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #bbb;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.88em}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:right;vertical-align:top}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
td.text,th.text{text-align:left}td.nw{white-space:nowrap}
caption{caption-side:top;text-align:left;font-style:italic;padding:.2em 0}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-style:italic;font-size:.9em}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.4em .8em;margin:.6em 0}
code{background:#f4f4f4;padding:0 .2em}
"""


@dataclass
class _Block:
    kind: str  # heading | text | note | bullets | table | image | code
    payload: Any
    extra: dict[str, Any] = field(default_factory=dict)


def _cell(value: Any, float_format: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return format(value, float_format)
    return str(value)


class Document:
    """Collects headings, paragraphs, tables and figures; writes `<stem>.md` and `<stem>.html`.

    Figures are saved as PNG under `images/` when added; the Markdown links to those files,
    the HTML embeds the same bytes.
    """

    def __init__(self, title: str, out_dir: str | Path, image_dir: str = "images") -> None:
        self.title = title
        self.out_dir = Path(out_dir)
        self.image_dir = image_dir
        self.blocks: list[_Block] = []
        self.images: dict[str, bytes] = {}

    # -- building -------------------------------------------------------------------------
    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(_Block("heading", text, {"level": level}))

    def text(self, text: str) -> None:
        self.blocks.append(_Block("text", text))

    def note(self, text: str) -> None:
        """A highlighted caveat (why something is missing, what a number cannot say)."""
        self.blocks.append(_Block("note", text))

    def bullets(self, items: list[str]) -> None:
        if items:
            self.blocks.append(_Block("bullets", list(items)))

    def code(self, text: str) -> None:
        self.blocks.append(_Block("code", text))

    def table(self, frame: pd.DataFrame, caption: str = "", float_format: str = ".4g",
              index: bool = False) -> None:
        frame = frame.reset_index() if index else frame
        self.blocks.append(_Block("table", frame.copy(), {"caption": caption,
                                                          "float_format": float_format}))

    def figure(self, fig: Any, name: str, caption: str = "", dpi: int = 110) -> str:
        """Save a matplotlib figure as `images/<name>.png` (closed afterwards); returns the
        relative path."""
        import matplotlib.pyplot as plt

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        plt.close(fig)
        relative = f"{self.image_dir}/{name}.png"
        self.images[relative] = buffer.getvalue()
        self.blocks.append(_Block("image", relative, {"caption": caption}))
        return relative

    # -- rendering ------------------------------------------------------------------------
    def to_markdown(self) -> str:
        lines = [f"# {self.title}", ""]
        for block in self.blocks:
            if block.kind == "heading":
                lines += ["#" * block.extra["level"] + " " + block.payload, ""]
            elif block.kind == "text":
                lines += [block.payload, ""]
            elif block.kind == "note":
                lines += ["> **Note.** " + block.payload.replace("\n", "\n> "), ""]
            elif block.kind == "bullets":
                lines += [f"- {item}" for item in block.payload] + [""]
            elif block.kind == "code":
                lines += ["```", block.payload, "```", ""]
            elif block.kind == "table":
                if block.extra["caption"]:
                    lines += [f"*{block.extra['caption']}*", ""]
                lines += [_markdown_table(block.payload, block.extra["float_format"]), ""]
            elif block.kind == "image":
                caption = block.extra["caption"]
                lines += [f"![{caption}]({block.payload})", ""]
                if caption:
                    lines += [f"*{caption}*", ""]
        return "\n".join(lines).rstrip() + "\n"

    def to_html(self) -> str:
        parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                 f"<title>{html.escape(self.title)}</title>", f"<style>{_CSS}</style>",
                 "</head><body>", f"<h1>{html.escape(self.title)}</h1>"]
        for block in self.blocks:
            if block.kind == "heading":
                level = min(6, block.extra["level"])
                parts.append(f"<h{level}>{html.escape(block.payload)}</h{level}>")
            elif block.kind == "text":
                parts.append(f"<p>{html.escape(block.payload)}</p>")
            elif block.kind == "note":
                parts.append(f'<div class="note"><b>Note.</b> {html.escape(block.payload)}'
                             "</div>")
            elif block.kind == "bullets":
                items = "".join(f"<li>{html.escape(item)}</li>" for item in block.payload)
                parts.append(f"<ul>{items}</ul>")
            elif block.kind == "code":
                parts.append(f"<pre><code>{html.escape(block.payload)}</code></pre>")
            elif block.kind == "table":
                parts.append(_html_table(block.payload, block.extra["caption"],
                                         block.extra["float_format"]))
            elif block.kind == "image":
                data = base64.b64encode(self.images[block.payload]).decode("ascii")
                caption = html.escape(block.extra["caption"])
                parts.append(f'<figure><img alt="{caption}" src="data:image/png;base64,{data}">'
                             f"<figcaption>{caption}</figcaption></figure>")
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"

    def write(self, stem: str = "report") -> dict[str, Path]:
        """Write `<stem>.md`, `<stem>.html` and the images into `out_dir`, each file whole
        (bench.outputs); returns the paths."""
        for relative, data in self.images.items():
            write_whole(self.out_dir / relative, data)
        md = write_whole(self.out_dir / f"{stem}.md", self.to_markdown())
        page = write_whole(self.out_dir / f"{stem}.html", self.to_html())
        return {"markdown": md, "html": page}


def _markdown_table(frame: pd.DataFrame, float_format: str) -> str:
    if frame.empty:
        return "*(empty)*"
    header = [str(c) for c in frame.columns]
    rows = [[_cell(v, float_format).replace("|", "\\|").replace("\n", " ") for v in row]
            for row in frame.itertuples(index=False)]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    align = ["---:" if is_num else ":---" for is_num in numeric]
    lines = ["| " + " | ".join(h.replace("|", "\\|") for h in header) + " |",
             "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _html_table(frame: pd.DataFrame, caption: str, float_format: str) -> str:
    if frame.empty:
        return "<p><i>(empty)</i></p>"
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{html.escape(caption)}</caption>")
    out.append("<thead><tr>" + "".join(
        f'<th class="{"num" if is_num else "text"}">{html.escape(str(c))}</th>'
        for c, is_num in zip(frame.columns, numeric, strict=True)) + "</tr></thead><tbody>")
    for row in frame.itertuples(index=False):
        texts = [_cell(v, float_format) for v in row]
        cells = "".join(
            f'<td class="{"num" if is_num else "text"}{" nw" if len(text) <= 32 else ""}">'
            f"{html.escape(text)}</td>"
            for text, is_num in zip(texts, numeric, strict=True))
        out.append(f"<tr>{cells}</tr>")
    out.append("</tbody></table>")
    return "".join(out)
