"""Notebook Press portal (Flask). Built in the portal issue; the toolkit never imports it."""
