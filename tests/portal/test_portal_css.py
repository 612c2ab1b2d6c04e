"""portal.css keeps its contrast promises (WCAG 2.1: 1.4.11 non-text 3:1, 1.4.3 text 4.5:1),
read from the stylesheet's own colour variables; the browser test checks they are applied."""

from __future__ import annotations

import re
from pathlib import Path

import publish_server

CSS = (Path(publish_server.__file__).parent / "static" / "portal.css").read_text(encoding="utf-8")


def variable(name: str) -> str:
    found = re.search(rf"--{name}:\s*(#[0-9a-fA-F]{{6}})", CSS)
    assert found, f"--{name} is not a #rrggbb colour in portal.css"
    return found.group(1)


def luminance(colour: str) -> float:
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_control_borders_and_the_focus_ring_stand_out_3_to_1_from_every_page_background():
    for background in ("#ffffff", variable("bg")):
        assert contrast(variable("control"), background) >= 3
        assert contrast(variable("focus"), background) >= 3
    assert "border: 1px solid var(--control)" in CSS and "outline: 3px solid var(--focus)" in CSS


def test_destructive_and_primary_buttons_have_readable_white_text():
    for fill in (variable("danger"), variable("accent")):
        assert contrast(fill, "#ffffff") >= 4.5


def test_phones_get_44_px_touch_targets():
    phone = CSS.split("@media (max-width: 40rem)")[-1]
    assert "button, .button, input, select" in phone and "min-height: 44px" in phone
