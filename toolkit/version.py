"""The toolkit's version: a leaf module, so the PDF's provenance, the publish client and
``nbpress --version`` read it without importing the notebook API (``toolkit/__init__.py``)."""

__version__ = "0.1.0"
