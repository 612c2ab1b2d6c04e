"""Download answers for files in object storage (``FILES_URL``), after access is checked and audited.

Streamed by the portal with the folder store's headers (ETag = SHA-256, Last-Modified, 304 for
If-None-Match, 206 for a Range, 416 for one out of bounds): Werkzeug decides the status from the
request and the object's size, and only the bytes it will send are asked of the store. Or, with
``S3_PRESIGNED_DOWNLOADS``, a 303 to a short-lived presigned URL whose answer carries the same
file name and type; the bytes then come from the store, not the portal.
"""

from __future__ import annotations

from flask import Response, current_app, redirect, request

from .errors import NotFound
from .storage import StoredObject, store_for

__all__ = ["object_response"]


def object_response(found: StoredObject, *, etag: str, last_modified, disposition: str) -> Response:
    store = store_for(current_app)
    settings = current_app.config["NBPRESS"]
    if settings["S3_PRESIGNED_DOWNLOADS"]:
        url = store.presigned_url(found.sha256, seconds=settings["S3_PRESIGN_SECONDS"], disposition=disposition)
        return redirect(url, code=303)
    response = Response(mimetype="application/pdf", direct_passthrough=True)
    response.set_etag(etag)
    response.last_modified = last_modified
    response.headers["Content-Disposition"] = disposition
    response.response = []  # decided below: the status first, then the bytes it needs
    response.make_conditional(request.environ, accept_ranges=True, complete_length=found.size)
    if response.status_code == 206:
        start, stop = response.content_range.start, response.content_range.stop
    elif response.status_code == 200:
        start, stop = 0, found.size
        response.content_length = found.size
    else:  # 304 (or 412): no body
        return response
    if request.method == "HEAD" or start == stop:
        return response
    body = store.open_range(found.sha256, start, stop)
    if body is None:  # removed between the HEAD and now (pruned meanwhile)
        raise NotFound()
    response.response = store.chunks(body, sha256=found.sha256)
    return response
