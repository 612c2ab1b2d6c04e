"""The preview's web page and files, served on 127.0.0.1 by the standard library's HTTP server.

    /             the page: status line, link to the PDF, the HTML in an iframe; it polls /version
                  every 250 ms and reloads itself when a new render (or a failure) is there
    /version      JSON: version, ok, message, pages, seconds
    /report.html  the last good render's HTML; its file:// links to templates/static are
                  rewritten to /static so the browser can follow them
    /report.pdf   the last good render's PDF
    /assets/...   its figures;  /static/...  the templates' static files (CSS, fonts)

Nothing else is served: paths are resolved and must stay inside the folder they belong to.
"""

from __future__ import annotations

import html
import json
import mimetypes
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .rerender import Shown

__all__ = ["PreviewServer"]

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Preview: {title}</title>
<style>
  html, body {{ margin: 0; height: 100%; font: 14px/1.4 system-ui, sans-serif; }}
  body {{ display: flex; flex-direction: column; }}
  header {{ padding: 6px 12px; background: #f3f4f6; border-bottom: 1px solid #d1d5db; display: flex; gap: 16px; }}
  #status.failed {{ color: #b91c1c; font-weight: 600; }}
  iframe {{ flex: 1; border: 0; width: 100%; }}
  .empty {{ padding: 24px; color: #6b7280; }}
</style></head>
<body data-version="{version}">
<header><strong>{title}</strong>{pdf_link}<span id="status" class="{status_class}">{message}</span></header>
{body}
<script>
  // Reload when the server has a new render; keep the report's scroll position across reloads.
  const shown = Number(document.body.dataset.version), frame = document.querySelector("iframe");
  if (frame) frame.addEventListener("load", () => {{
    const y = Number(sessionStorage.getItem("nbpress-scroll") || 0);
    frame.contentWindow.scrollTo(0, y);
  }});
  async function poll() {{
    try {{
      const answer = await (await fetch("/version", {{cache: "no-store"}})).json();
      if (answer.version !== shown) {{
        if (frame) sessionStorage.setItem("nbpress-scroll", String(frame.contentWindow.scrollY));
        location.reload();
        return;
      }}
    }} catch (err) {{
      document.getElementById("status").textContent = "the preview server does not answer (stopped?)";
    }}
    setTimeout(poll, 250);
  }}
  setTimeout(poll, 250);
</script>
</body></html>
"""


def page(title: str, shown: Shown) -> str:
    version = shown.version
    pdf_link = (f'<a href="/report.pdf?v={version}" target="_blank">PDF ({shown.pages} page{"s" if shown.pages != 1 else ""})</a>'
                if shown.folder is not None else "")
    kept = " (the last good render is shown below)" if not shown.ok and shown.folder is not None else ""
    body = (f'<iframe src="/report.html?v={version}" title="report"></iframe>' if shown.folder is not None
            else '<p class="empty">Nothing rendered yet.</p>')
    return PAGE.format(title=html.escape(title), version=version, pdf_link=pdf_link, body=body,
                       status_class="ok" if shown.ok else "failed", message=html.escape(shown.message) + kept)


def _inside(root: Path, relative: str) -> Path | None:
    """``root/relative`` if it is a file inside ``root`` (no ``..`` escapes), else None."""
    root = root.resolve()
    target = (root / relative).resolve()
    return target if target.is_relative_to(root) and target.is_file() else None


class PreviewServer:
    """Serves ``shown()`` (read at each request) and the static files on 127.0.0.1:``port`` (0: a free one).

    ``static_dirs``: the project's ``templates/static`` (the HTML links to it), then the built-in
    one; a file is served from the first that has it, as the PDF's fenced fetcher does.
    """

    def __init__(self, title: str, shown: Callable[[], Shown], static_dirs: Sequence[Path], port: int = 0):
        self.title, self.shown, self.static_dirs = title, shown, tuple(static_dirs)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="nbpress-preview-http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # noqa: A002 - the base class's name; requests are not logged
                pass

            def do_GET(self):
                try:
                    self._answer(unquote(urlsplit(self.path).path))
                except OSError:  # the render was replaced while being read (or the browser left): ask again
                    try:
                        self._send(b"the render changed; reload", "text/plain", 503)
                    except OSError:
                        pass

            def _answer(self, path: str):
                shown = server.shown()
                if path == "/":
                    return self._send(page(server.title, shown).encode(), "text/html; charset=utf-8")
                if path == "/version":
                    return self._send(json.dumps(shown.as_json()).encode(), "application/json")
                if path.startswith("/static/"):
                    relative = path[len("/static/"):]
                    return self._file(next(filter(None, (_inside(d, relative) for d in server.static_dirs)), None))
                if shown.folder is None:
                    return self._send(b"nothing rendered yet", "text/plain", 404)
                if path == "/report.html":
                    text = (shown.folder / "report.html").read_text(encoding="utf-8")
                    text = text.replace(server.static_dirs[0].resolve().as_uri(), "/static")
                    return self._send(text.encode(), "text/html; charset=utf-8")
                if path == "/report.pdf":
                    return self._file(_inside(shown.folder, "report.pdf"))
                if path.startswith("/assets/"):
                    return self._file(_inside(shown.folder / "assets", path[len("/assets/"):]))
                return self._send(b"not found", "text/plain", 404)

            def _file(self, target: Path | None):
                if target is None:
                    return self._send(b"not found", "text/plain", 404)
                kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
                return self._send(target.read_bytes(), kind)

            def _send(self, body: bytes, kind: str, status: int = 200):
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")  # every render is new: never a stale copy
                self.end_headers()
                self.wfile.write(body)

        return Handler
