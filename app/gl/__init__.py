"""OpenGL views: the 3-D surface every panel embeds (``create_surface_view``)."""

from .surface_item import SurfaceItem
from .surface_view import (
    NoOpenGLNotice,
    SurfaceView,
    create_surface_view,
    opengl_available,
)

__all__ = ["SurfaceItem", "SurfaceView", "NoOpenGLNotice", "create_surface_view", "opengl_available"]
