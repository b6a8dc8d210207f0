"""One colour per method, the same in every figure the suite draws.

Colours follow the method, never its position in a figure's legend: a reader who learnt that
DCWP is vermilion in one panel finds it vermilion in the next. The registered methods have fixed,
mutually distinct colours (Okabe-Ito and a few darker additions, readable by colour-blind readers
and in greyscale print apart); a method added later gets one of the spare colours, chosen from
its name so that it too stays the same everywhere.
"""
from __future__ import annotations

import colorsys
import hashlib

METHOD_COLORS: dict[str, str] = {
    "erm": "#4d4d4d",       # the reference: dark grey
    "lff": "#0072b2",       # blue
    "disent": "#56b4e9",    # sky blue
    "dcwp": "#d55e00",      # vermilion
    "prusc": "#009e73",     # bluish green
    "denetdm": "#cc79a7",   # reddish purple
    "jtt": "#e69f00",       # orange
    "lc": "#8c510a",        # brown
    "groupdro": "#762a83",  # deep purple
    "dfr": "#a6a600",       # olive
}
SPARE_COLORS = ("#1b7837", "#b2182b", "#2166ac", "#f781bf", "#35978f", "#bf812d", "#542788", "#999999")


def method_color(method: str) -> str:
    """The colour of `method` in every figure."""
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    index = int(hashlib.sha256(method.encode()).hexdigest(), 16) % len(SPARE_COLORS)
    return SPARE_COLORS[index]


def shade(color: str, index: int) -> str:
    """The `index`-th variant of a method's colour (0 = the colour itself, then lighter): variants of
    one method stay recognisably that method."""
    r, g, b = (int(color[i:i + 2], 16) / 255 for i in (1, 3, 5))
    h, lightness, s = colorsys.rgb_to_hls(r, g, b)
    lightness = min(0.85, lightness + 0.14 * index)
    r, g, b = colorsys.hls_to_rgb(h, lightness, s)
    return "#" + "".join(f"{round(255 * v):02x}" for v in (r, g, b))
