"""Notebook Press portal (Flask): receives PDFs from runs and serves them to their recipients.

``flask --app publish_server run`` finds :func:`create_app`. The toolkit never imports this
package, and this package never imports pandas, matplotlib or WeasyPrint.
"""

from .app import create_app

__all__ = ["create_app"]
