"""One pure-PyTorch rasterizer and what is built on it (IUV targets, LSP part masks, demo overlays).

See ``rasterizer.py`` for the screen-space conventions shared by every renderer here.
"""
from pymaf.render.iuv import IUVRenderer
from pymaf.render.overlay import render_overlay, render_side_view
from pymaf.render.parts import PartRenderer
from pymaf.render.rasterizer import Fragments, interpolate, project_vertices, rasterize

__all__ = ["Fragments", "rasterize", "project_vertices", "interpolate", "IUVRenderer", "PartRenderer",
           "render_overlay", "render_side_view"]
