"""A GL item for a height field z = f(x, y) whose heights change often.

pyqtgraph's ``GLSurfacePlotItem`` rebuilds the whole mesh (vertices, per-face normals,
per-vertex colours) in NumPy on every ``setData(z=...)``. ``SurfaceItem`` keeps the
(x, y) grid and the triangle indices in static GPU buffers and re-uploads only the
heights with ``glBufferSubData``; colour (a 256-entry LUT texture indexed by the
normalised height), lighting (normals from ``dFdx``/``dFdy`` of the eye-space
position) and holes (NaN heights) are all computed in the shaders.

It follows pyqtgraph 0.14's conventions for its own GL items: ``a_position`` bound to
attribute 0, ``u_mvp`` from ``mvpMatrix()``, GLSL 1.40 on desktop GL >= 3.1 and 1.20
below, GLSL ES 3.00 / 1.00 on OpenGL ES. It restores the GL state it touches
(program, buffer bindings, enabled attribute arrays, texture unit and binding,
polygon offset, blending) before returning from ``paint``.

Where a frame goes on Mesa llvmpipe (256 x 256 grid, 800 x 600 view): the vertex work is
about 5 ms, setting up and rasterising the 130k small triangles 15-25 ms, and that part
the stock item pays too; what this item saves is the stock item's NumPy rebuild (about
30 ms per update). So about 2x per frame on a CPU rasteriser (benchmarks/surface_gl.py),
and ``setData`` itself is about 0.3 ms, so the GUI thread is free between frames.
"""

from __future__ import annotations

import itertools

import numpy as np
import pyqtgraph as pg
from OpenGL import GL
from OpenGL.GL import shaders as gl_shaders
from pyqtgraph.opengl import GLGraphicsItem
from PySide6 import QtGui

__all__ = ["SurfaceItem", "lookup_table", "context_key"]

_POSITION_LOC = 0  # pyqtgraph binds a_position to 0: some drivers draw nothing unless 0 is an array
_HEIGHT_LOC = 1

_VERTEX_SOURCE = """
ATTRIBUTE vec2 a_position;   // grid x, y (static buffer)
ATTRIBUTE vec2 a_height;     // height with NaN replaced by 0, validity 1 or 0
uniform mat4 u_mvp;
uniform mat4 u_modelview;
uniform vec3 u_scale;        // display = data * u_scale + u_offset
uniform vec3 u_offset;
uniform vec2 u_zclip;        // display-space limits of z
uniform vec2 u_levels;       // (lo, 1 / (hi - lo))
uniform int u_nknots;        // >= 2: colour by band between knots instead of linearly
uniform float u_knots[MAX_KNOTS];
VARYING_OUT float v_height;
VARYING_OUT float v_valid;
VARYING_OUT vec3 v_eye;
float colour_position(float h) {
    // Where the height sits on the colormap, 0..1: linear between the levels, or, with
    // knots (e.g. log-spaced contour levels), an equal share of colours for every band.
    if (u_nknots < 2)
        return clamp((h - u_levels.x) * u_levels.y, 0.0, 1.0);
    if (h <= u_knots[0])
        return 0.0;
    float last = float(u_nknots - 1);
    for (int k = 1; k < MAX_KNOTS; k++) {
        if (k >= u_nknots)
            break;
        if (h <= u_knots[k]) {
            float width = u_knots[k] - u_knots[k - 1];
            float within = width > 0.0 ? (h - u_knots[k - 1]) / width : 1.0;
            return (float(k - 1) + within) / last;
        }
    }
    return 1.0;
}
void main() {
    vec4 p = vec4(vec3(a_position, a_height.x) * u_scale + u_offset, 1.0);
    p.z = clamp(p.z, u_zclip.x, u_zclip.y);   // heights beyond the box are cut at its lid
    v_height = colour_position(a_height.x);
    v_valid = a_height.y;
    v_eye = (u_modelview * p).xyz;
    gl_Position = u_mvp * p;
}
"""

_FRAGMENT_SOURCE = """
uniform sampler2D u_lut;     // 256 x 1 RGBA colormap
uniform int u_mode;          // 0: lit/unlit surface, 1: wireframe lines
uniform int u_lighting;
uniform int u_top_is_front;  // 1 when the upper side of the surface winds counter-clockwise
uniform vec4 u_line_color;
uniform float u_opacity;
VARYING_IN float v_height;   // colour position 0..1
VARYING_IN float v_valid;
VARYING_IN vec3 v_eye;
void main() {
    // Derivatives first: they are undefined after a non-uniform discard.
    // In window coordinates (y up) cross(dFdx, dFdy) always faces the viewer,
    // so both sides of the surface are lit.
    vec3 n = normalize(cross(dFdx(v_eye), dFdy(v_eye)));
    if (v_valid < 0.999) discard;      // a triangle touching a NaN height is a hole
    if (u_mode == 1) {
        FRAG_COLOR = u_line_color;
        return;
    }
    float t = clamp(v_height, 0.0, 1.0);  // colour position from the vertex shader
    vec3 base = TEXTURE(u_lut, vec2(t * (255.0 / 256.0) + 0.5 / 256.0, 0.5)).rgb;
    vec3 rgb = base;
    if (u_lighting != 0) {
        // A key light from the upper left of the camera and a weak fill from the right,
        // both fixed to the camera like pyqtgraph's "shaded" program.
        vec3 key = normalize(vec3(-0.45, 0.65, 0.65));
        vec3 fill = normalize(vec3(0.7, -0.2, 0.7));
        float diffuse = 0.62 * max(dot(n, key), 0.0) + 0.18 * max(dot(n, fill), 0.0);
        vec3 half_vector = normalize(key + vec3(0.0, 0.0, 1.0));
        float s = max(dot(n, half_vector), 0.0);
        s *= s; s *= s; s *= s; s *= s;            // s^16 by squaring: cheaper than pow
        float specular = s * s * s;                // s^48
        rgb = base * (0.38 + diffuse) + vec3(0.12 * specular);
        if (gl_FrontFacing != (u_top_is_front != 0))
            rgb *= 0.7;                            // the underside, seen past an edge
    }
    FRAG_COLOR = vec4(rgb, u_opacity);
}
"""

_PREAMBLES = {
    # (is_es, modern): (vertex preamble, fragment preamble)
    (False, True): (
        "#version 140\n#define ATTRIBUTE in\n#define VARYING_OUT out\n",
        "#version 140\n#define VARYING_IN in\n#define TEXTURE texture\n"
        "#define FRAG_COLOR frag_color\nout vec4 frag_color;\n",
    ),
    (False, False): (
        "#version 120\n#define ATTRIBUTE attribute\n#define VARYING_OUT varying\n",
        "#version 120\n#define VARYING_IN varying\n#define TEXTURE texture2D\n"
        "#define FRAG_COLOR gl_FragColor\n",
    ),
    (True, True): (
        "#version 300 es\nprecision highp float;\n#define ATTRIBUTE in\n#define VARYING_OUT out\n",
        "#version 300 es\nprecision highp float;\n#define VARYING_IN in\n"
        "#define TEXTURE texture\n#define FRAG_COLOR frag_color\nout vec4 frag_color;\n",
    ),
    (True, False): (
        "#version 100\nprecision highp float;\n#define ATTRIBUTE attribute\n#define VARYING_OUT varying\n",
        "#version 100\n#extension GL_OES_standard_derivatives : enable\nprecision highp float;\n"
        "#define VARYING_IN varying\n#define TEXTURE texture2D\n#define FRAG_COLOR gl_FragColor\n",
    ),
}

MAX_KNOTS = 64
_UNIFORMS = ("u_mvp", "u_modelview", "u_scale", "u_offset", "u_zclip", "u_lut", "u_levels", "u_nknots", "u_knots", "u_mode",
             "u_lighting", "u_top_is_front", "u_line_color", "u_opacity")


_context_keys = itertools.count(1)


def context_key(context) -> int:
    """A number unique to one live QOpenGLContext.

    Tagged on the C++ object as a dynamic property, so a new context that happens to be
    allocated at a dead one's address (and may get its Python wrapper) is still told apart.
    """
    key = context.property("_mlcalc_context_key")
    if key is None:
        key = next(_context_keys)
        context.setProperty("_mlcalc_context_key", key)
    return int(key)


def lookup_table(cmap) -> np.ndarray:
    """Return a (256, 4) uint8 RGBA table for a colormap name, a ``pg.ColorMap`` or an array.

    Arrays may be (n, 3) or (n, 4), uint8 or floats in [0, 1]; they are resampled to 256.
    """
    if isinstance(cmap, str):
        cmap = pg.colormap.get(cmap)
    if isinstance(cmap, pg.ColorMap):
        return np.ascontiguousarray(
            cmap.getLookupTable(nPts=256, alpha=True, mode=pg.ColorMap.BYTE), dtype=np.uint8)
    table = np.asarray(cmap)
    if table.ndim != 2 or table.shape[1] not in (3, 4) or len(table) < 2:
        raise ValueError(f"colormap array must be (n, 3) or (n, 4), got {table.shape}")
    if table.dtype.kind == "f":
        table = np.clip(table * 255.0 + 0.5, 0, 255)
    table = table.astype(np.float64)
    if table.shape[1] == 3:
        table = np.column_stack([table, np.full(len(table), 255.0)])
    positions = np.linspace(0.0, 1.0, len(table))
    samples = np.linspace(0.0, 1.0, 256)
    resampled = np.column_stack([np.interp(samples, positions, table[:, c]) for c in range(4)])
    return np.ascontiguousarray(np.rint(resampled), dtype=np.uint8)


def _grid_strip(ny: int, nx: int) -> np.ndarray:
    """One triangle strip over the whole grid, vertices numbered row-major (j * nx + i).

    Each band between rows j and j + 1 zigzags (j, 0), (j + 1, 0), (j, 1), ...; bands are
    joined by repeating the last index of one and the first of the next (zero-area
    triangles). A third of the indices of a triangle list: on llvmpipe, where vertex
    processing and triangle setup bound the frame, that is about 10 % faster.
    """
    dtype = np.uint16 if ny * nx <= 65536 else np.uint32
    band = 2 * nx + 2                     # zigzag plus the two joining indices
    strip = np.empty((ny - 1, band), dtype=np.int64)
    top = np.arange(ny - 1)[:, None] * nx + np.arange(nx)[None, :]
    strip[:, 1:-1:2] = top
    strip[:, 2:-1:2] = top + nx
    strip[:, 0] = strip[:, 1]             # repeat the band's first index ...
    strip[:, -1] = strip[:, -2]           # ... and its last
    return np.ascontiguousarray(strip.ravel()[1:-1], dtype=dtype)


def _grid_lines(ny: int, nx: int, every: int) -> np.ndarray:
    """Indices of line segments along every ``every``-th grid row and column (and the last)."""
    dtype = np.uint16 if ny * nx <= 65536 else np.uint32
    rows = np.unique(np.r_[np.arange(0, ny, every), ny - 1])
    cols = np.unique(np.r_[np.arange(0, nx, every), nx - 1])
    along_x = (rows[:, None] * nx + np.arange(nx - 1)[None, :]).ravel()
    along_y = (np.arange(ny - 1)[:, None] * nx + cols[None, :]).ravel()
    segments = np.concatenate([np.stack([along_x, along_x + 1], axis=1),
                               np.stack([along_y, along_y + nx], axis=1)])
    return np.ascontiguousarray(segments.ravel(), dtype=dtype)


def _index_type(indices: np.ndarray) -> int:
    return GL.GL_UNSIGNED_SHORT if indices.dtype == np.uint16 else GL.GL_UNSIGNED_INT


class SurfaceItem(GLGraphicsItem.GLGraphicsItem):
    """Colormapped, lit surface on a regular grid; cheap to update when only z changes.

    Parameters
    ----------
    x, y, z, levels
        Passed to :meth:`setData`.
    cmap
        Colormap name (pyqtgraph's bundled maps), ``pg.ColorMap`` or (n, 3|4) array.
    wireframe
        Draw grid lines over the surface (see :meth:`setWireframe`).
    """

    def __init__(self, x=None, y=None, z=None, levels=None, *, cmap="viridis",
                 wireframe=False, parentItem=None):
        super().__init__(parentItem=parentItem)
        self.setGLOptions("opaque")
        self._x = None
        self._y = None
        self._z = None                # (ny, nx) float32 as given, NaN kept
        self._heights = None          # (ny * nx, 2) float32: z with NaN -> 0, validity
        self._finite_range = None     # (min, max) of the finite heights, or None
        self._levels = (0.0, 1.0)
        self._knots = None
        self._zclip_data = (None, None)
        self._display_zclip = (-3.0e38, 3.0e38)
        self._lut = lookup_table(cmap)
        self._wireframe = bool(wireframe)
        self._wire_every = None
        self._wire_color = (0.0, 0.0, 0.0, 0.35)
        self._opacity = 1.0
        self._lighting = True
        self._display_scale = np.ones(3, dtype=np.float32)
        self._display_offset = np.zeros(3, dtype=np.float32)
        self._triangles = None
        self._lines = None
        self._gl = None               # per-context GL objects, see _ensure_gl
        self._dirty = set()
        if z is not None:
            self.setData(x=x, y=y, z=z, levels=levels)

    # ------------------------------------------------------------------ data
    def setData(self, x=None, y=None, z=None, levels=None):
        """Set the grid and/or heights.

        ``x`` has shape (nx,), ``y`` (ny,), ``z`` (ny, nx), row-major with rows along y
        (``z[j, i] = f(x[i], y[j])``). NaN or infinite heights are holes. ``levels=(lo, hi)``
        maps lo and hi to the two ends of the colormap (heights outside clip to the ends);
        when z is given without levels, the levels follow the finite range of z.
        Only the heights are sent to the GPU again when the grid is unchanged.
        """
        grid_changed = False
        if z is not None:
            z = np.asarray(z, dtype=np.float32)
            if z.ndim != 2 or z.shape[0] < 2 or z.shape[1] < 2:
                raise ValueError(f"z must be a 2-D array of at least 2 x 2, got {z.shape}")
            ny, nx = z.shape
            if self._z is None or self._z.shape != z.shape:
                grid_changed = True
        elif self._z is not None:
            ny, nx = self._z.shape
        else:
            ny = nx = None
        x_new = self._checked_axis("x", x, nx, self._x)
        y_new = self._checked_axis("y", y, ny, self._y)
        if x_new is not None and (self._x is None or not np.array_equal(x_new, self._x)):
            self._x = x_new
            self._dirty.add("positions")
        if y_new is not None and (self._y is None or not np.array_equal(y_new, self._y)):
            self._y = y_new
            self._dirty.add("positions")

        if z is not None:
            self._z = z
            self._store_heights(z, grid_changed)
            if levels is None and self._finite_range is not None:
                levels = self._finite_range
        if levels is not None:
            self.setLevels(levels)
        self.update()

    def _checked_axis(self, name, values, n, current):
        """Validate a grid axis; default to 0..n-1 when none was ever given."""
        if values is None:
            if n is None or (current is not None and len(current) == n):
                return None
            if current is not None:
                raise ValueError(f"z has {n} points along {name} but {name} has {len(current)};"
                                 f" pass a new {name}")
            return np.arange(n, dtype=np.float32)
        values = np.asarray(values, dtype=np.float32).ravel()
        if n is not None and len(values) != n:
            raise ValueError(f"{name} has {len(values)} values, z has {n} along {name}")
        return values

    def _store_heights(self, z, grid_changed):
        flat = z.reshape(-1)
        finite = np.isfinite(flat)
        if grid_changed or self._heights is None:
            self._heights = np.empty((flat.size, 2), dtype=np.float32)
            self._triangles = _grid_strip(*z.shape)
            self._lines = None
            self._dirty.update({"positions", "heights_alloc", "triangles"})
        else:
            self._dirty.add("heights")
        if finite.all():
            self._heights[:, 0] = flat
            self._heights[:, 1] = 1.0
            self._finite_range = (float(flat.min()), float(flat.max()))
        else:
            self._heights[:, 0] = np.where(finite, flat, 0.0)
            self._heights[:, 1] = finite
            kept = flat[finite]
            self._finite_range = (float(kept.min()), float(kept.max())) if kept.size else None

    def setLevels(self, levels):
        """Heights mapped to the bottom and top of the colormap."""
        lo, hi = (float(v) for v in levels)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError(f"levels must be finite, got {levels}")
        self._levels = (lo, hi)
        self.update()

    def levels(self):
        return self._levels

    def setColorKnots(self, knots):
        """Colour by band: increasing heights ``knots`` get evenly spaced colours, linearly
        in between (None: linear between the levels). At most MAX_KNOTS knots.

        With log-spaced contour levels as knots, a deep, flat valley gets as many colours as
        the steep walls, instead of one.
        """
        if knots is None or len(knots) < 2:
            self._knots = None
        else:
            values = np.asarray(knots, dtype=np.float32).ravel()
            if len(values) > MAX_KNOTS:
                values = values[np.linspace(0, len(values) - 1, MAX_KNOTS).round().astype(int)]
            if not (np.all(np.isfinite(values)) and np.all(np.diff(values) >= 0)):
                raise ValueError("colour knots must be finite and increasing")
            self._knots = np.ascontiguousarray(values)
        self.update()

    def heightRange(self):
        """(min, max) of the finite heights, or None when there are none."""
        return self._finite_range

    def gridShape(self):
        """(ny, nx) of the current grid, or None."""
        return None if self._z is None else self._z.shape

    # ------------------------------------------------------------------ looks
    def setColorMap(self, cmap):
        """Colormap name, ``pg.ColorMap`` or (n, 3|4) array; sampled at 256 entries."""
        self._lut = lookup_table(cmap)
        self._dirty.add("lut")
        self.update()

    def colorLookupTable(self):
        """The (256, 4) uint8 table the shader samples."""
        return self._lut.copy()

    def setWireframe(self, enabled=True, every=None, color=None):
        """Grid lines over the surface along every ``every``-th row and column.

        ``every=None`` picks a spacing that gives about 25 lines per direction.
        """
        self._wireframe = bool(enabled)
        if every is not None and int(every) != self._wire_every:
            self._wire_every = max(1, int(every))
            self._lines = None
        if color is not None:
            self._wire_color = tuple(float(c) for c in pg.mkColor(color).getRgbF())
        self.update()

    def wireframe(self):
        return self._wireframe

    def setOpacity(self, opacity):
        """Surface opacity in [0, 1]; below 1 the item blends (unsorted, so expect artefacts)."""
        self._opacity = float(np.clip(opacity, 0.0, 1.0))
        self.setGLOptions("opaque" if self._opacity >= 1.0 else "translucent")

    def opacity(self):
        return self._opacity

    def setLighting(self, enabled=True):
        """Shade the colormap with a camera-fixed light; off shows the exact LUT colours."""
        self._lighting = bool(enabled)
        self.update()

    def setDisplayTransform(self, scale=(1.0, 1.0, 1.0), offset=(0.0, 0.0, 0.0)):
        """Draw the data point (x, y, z) at (x, y, z) * scale + offset.

        Applied in the vertex shader, so a panel can squeeze heights in the thousands
        (Rosenbrock) into a unit box without touching the data or the colour levels.
        """
        self._display_scale = np.asarray(scale, dtype=np.float32).reshape(3)
        self._display_offset = np.asarray(offset, dtype=np.float32).reshape(3)
        self.setHeightClip(*self._zclip_data)

    def setHeightClip(self, lo=None, hi=None):
        """Cut heights outside [lo, hi] (data units) at those heights; None: no cut.

        A function with a few huge values (exp(1000 x)) is then drawn inside its box with
        a flat lid, instead of spikes that leave the picture.
        """
        bounds = []
        for value, default in ((lo, -3.0e38), (hi, 3.0e38)):
            if value is None or not np.isfinite(value):
                bounds.append(default)
            else:
                bounds.append(float(value) * float(self._display_scale[2]) + float(self._display_offset[2]))
        self._zclip_data = (lo, hi)
        self._display_zclip = (min(bounds), max(bounds))
        self.update()

    def mapDataToDisplay(self, points):
        """Map (..., 3) data points through the display transform."""
        return np.asarray(points, dtype=np.float64) * self._display_scale + self._display_offset

    # ------------------------------------------------------------------ GL
    def paint(self):
        if self._z is None:
            return
        self.setupGLState()
        gl_objects = self._ensure_gl()
        saved = _save_state()
        try:
            self._upload(gl_objects)
            self._draw(gl_objects)
        finally:
            _restore_state(saved)

    def _ensure_gl(self):
        """Create the program, buffers and texture for the current context (once per context).

        A QOpenGLWidget gets a new context when it moves to another top-level window; GL
        names from the old one are meaningless there, so everything is made again.
        """
        context = QtGui.QOpenGLContext.currentContext()
        key = context_key(context)
        if self._gl is not None and self._gl["context"] == key:
            return self._gl
        program = _build_program(context)
        buffers = GL.glGenBuffers(4)
        self._gl = {
            "context": key,
            "program": program,
            "uniforms": {name: GL.glGetUniformLocation(program, name) for name in _UNIFORMS},
            "positions": int(buffers[0]),
            "heights": int(buffers[1]),
            "triangles": int(buffers[2]),
            "lines": int(buffers[3]),
            "lut": int(GL.glGenTextures(1)),
        }
        self._lines = None
        self._dirty.update({"positions", "heights_alloc", "triangles", "lut"})
        return self._gl

    def _upload(self, g):
        dirty = self._dirty
        if not dirty:
            return
        if "positions" in dirty:
            xx, yy = np.meshgrid(self._x, self._y)
            positions = np.ascontiguousarray(np.stack([xx.ravel(), yy.ravel()], axis=1),
                                             dtype=np.float32)
            GL.glBindBuffer(GL.GL_ARRAY_BUFFER, g["positions"])
            GL.glBufferData(GL.GL_ARRAY_BUFFER, positions.nbytes, positions, GL.GL_STATIC_DRAW)
        if "heights_alloc" in dirty:
            GL.glBindBuffer(GL.GL_ARRAY_BUFFER, g["heights"])
            GL.glBufferData(GL.GL_ARRAY_BUFFER, self._heights.nbytes, self._heights,
                            GL.GL_DYNAMIC_DRAW)
        elif "heights" in dirty:
            GL.glBindBuffer(GL.GL_ARRAY_BUFFER, g["heights"])
            GL.glBufferSubData(GL.GL_ARRAY_BUFFER, 0, self._heights.nbytes, self._heights)
        if "triangles" in dirty:
            GL.glBindBuffer(GL.GL_ELEMENT_ARRAY_BUFFER, g["triangles"])
            GL.glBufferData(GL.GL_ELEMENT_ARRAY_BUFFER, self._triangles.nbytes, self._triangles,
                            GL.GL_STATIC_DRAW)
        if "lut" in dirty:
            GL.glActiveTexture(GL.GL_TEXTURE0)
            GL.glBindTexture(GL.GL_TEXTURE_2D, g["lut"])
            for pname, value in ((GL.GL_TEXTURE_MIN_FILTER, GL.GL_LINEAR),
                                 (GL.GL_TEXTURE_MAG_FILTER, GL.GL_LINEAR),
                                 (GL.GL_TEXTURE_WRAP_S, GL.GL_CLAMP_TO_EDGE),
                                 (GL.GL_TEXTURE_WRAP_T, GL.GL_CLAMP_TO_EDGE)):
                GL.glTexParameteri(GL.GL_TEXTURE_2D, pname, value)
            GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 4)
            GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_RGBA, 256, 1, 0, GL.GL_RGBA,
                            GL.GL_UNSIGNED_BYTE, self._lut)
        dirty.clear()

    def _top_is_front(self):
        """Whether the surface's upper side is GL's front face (counter-clockwise).

        Seen from +z, the strip's first triangle (x0, y0), (x0, y1), (x1, y0) turns
        clockwise when x and y both increase; a decreasing axis or a negative display
        scale mirrors it.
        """
        dx = float(self._x[-1] - self._x[0]) * float(self._display_scale[0])
        dy = float(self._y[-1] - self._y[0]) * float(self._display_scale[1])
        return dx * dy < 0.0

    def _ensure_lines(self, g):
        if self._lines is not None:
            return
        ny, nx = self._z.shape
        every = self._wire_every or max(1, int(round(max(nx, ny) / 25.0)))
        self._lines = _grid_lines(ny, nx, every)
        GL.glBindBuffer(GL.GL_ELEMENT_ARRAY_BUFFER, g["lines"])
        GL.glBufferData(GL.GL_ELEMENT_ARRAY_BUFFER, self._lines.nbytes, self._lines,
                        GL.GL_STATIC_DRAW)

    def _draw(self, g):
        u = g["uniforms"]
        GL.glUseProgram(g["program"])
        GL.glUniformMatrix4fv(u["u_mvp"], 1, False,
                              np.array(self.mvpMatrix().data(), dtype=np.float32))
        GL.glUniformMatrix4fv(u["u_modelview"], 1, False,
                              np.array(self.modelViewMatrix().data(), dtype=np.float32))
        GL.glUniform3f(u["u_scale"], *self._display_scale)
        GL.glUniform3f(u["u_offset"], *self._display_offset)
        GL.glUniform2f(u["u_zclip"], *self._display_zclip)
        lo, hi = self._levels
        span = hi - lo
        GL.glUniform2f(u["u_levels"], lo, 1.0 / span if span != 0.0 else 0.0)
        knots = self._knots
        GL.glUniform1i(u["u_nknots"], 0 if knots is None else len(knots))
        if knots is not None and u["u_knots"] != -1:
            GL.glUniform1fv(u["u_knots"], len(knots), knots)
        GL.glUniform1i(u["u_lighting"], int(self._lighting))
        GL.glUniform1i(u["u_top_is_front"], int(self._top_is_front()))
        GL.glUniform1f(u["u_opacity"], self._opacity)
        GL.glUniform1i(u["u_lut"], 0)
        GL.glActiveTexture(GL.GL_TEXTURE0)
        GL.glBindTexture(GL.GL_TEXTURE_2D, g["lut"])

        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, g["positions"])
        GL.glVertexAttribPointer(_POSITION_LOC, 2, GL.GL_FLOAT, False, 0, None)
        GL.glEnableVertexAttribArray(_POSITION_LOC)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, g["heights"])
        GL.glVertexAttribPointer(_HEIGHT_LOC, 2, GL.GL_FLOAT, False, 0, None)
        GL.glEnableVertexAttribArray(_HEIGHT_LOC)

        if self._wireframe:
            # push the faces back a little so the lines on them win the depth test
            GL.glEnable(GL.GL_POLYGON_OFFSET_FILL)
            GL.glPolygonOffset(1.0, 1.0)
        GL.glUniform1i(u["u_mode"], 0)
        GL.glBindBuffer(GL.GL_ELEMENT_ARRAY_BUFFER, g["triangles"])
        GL.glDrawElements(GL.GL_TRIANGLE_STRIP, self._triangles.size,
                          _index_type(self._triangles), None)
        if self._wireframe:
            GL.glDisable(GL.GL_POLYGON_OFFSET_FILL)
            self._ensure_lines(g)
            GL.glEnable(GL.GL_BLEND)
            GL.glBlendFuncSeparate(GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA,
                                   GL.GL_ONE, GL.GL_ONE_MINUS_SRC_ALPHA)
            GL.glUniform1i(u["u_mode"], 1)
            GL.glUniform4f(u["u_line_color"], *self._wire_color)
            GL.glBindBuffer(GL.GL_ELEMENT_ARRAY_BUFFER, g["lines"])
            GL.glDrawElements(GL.GL_LINES, self._lines.size, _index_type(self._lines), None)


def _build_program(context):
    """Compile and link the surface program for ``context``'s GL flavour and version."""
    fmt = context.format()
    is_es = context.isOpenGLES()
    modern = fmt.version() >= ((3, 0) if is_es else (3, 1))
    vertex_pre, fragment_pre = _PREAMBLES[(is_es, modern)]
    vertex = gl_shaders.compileShader([vertex_pre, f"#define MAX_KNOTS {MAX_KNOTS}\n", _VERTEX_SOURCE],
                                      GL.GL_VERTEX_SHADER)
    fragment = gl_shaders.compileShader([fragment_pre, _FRAGMENT_SOURCE], GL.GL_FRAGMENT_SHADER)
    program = GL.glCreateProgram()
    GL.glAttachShader(program, vertex)
    GL.glAttachShader(program, fragment)
    GL.glBindAttribLocation(program, _POSITION_LOC, "a_position")
    GL.glBindAttribLocation(program, _HEIGHT_LOC, "a_height")
    GL.glLinkProgram(program)
    linked = GL.glGetProgramiv(program, GL.GL_LINK_STATUS)
    GL.glDetachShader(program, vertex)
    GL.glDetachShader(program, fragment)
    GL.glDeleteShader(vertex)
    GL.glDeleteShader(fragment)
    if not linked:
        log = GL.glGetProgramInfoLog(program)
        GL.glDeleteProgram(program)
        raise RuntimeError(f"SurfaceItem shader link failed: {log!r}")
    return program


def _save_state():
    """The GL state SurfaceItem.paint changes, read before it does."""
    def attrib_enabled(loc):
        return int(GL.glGetVertexAttribiv(loc, GL.GL_VERTEX_ATTRIB_ARRAY_ENABLED)[0])

    active_texture = int(GL.glGetIntegerv(GL.GL_ACTIVE_TEXTURE))
    GL.glActiveTexture(GL.GL_TEXTURE0)
    return {
        "program": int(GL.glGetIntegerv(GL.GL_CURRENT_PROGRAM)),
        "array_buffer": int(GL.glGetIntegerv(GL.GL_ARRAY_BUFFER_BINDING)),
        "element_buffer": int(GL.glGetIntegerv(GL.GL_ELEMENT_ARRAY_BUFFER_BINDING)),
        "active_texture": active_texture,
        "texture0": int(GL.glGetIntegerv(GL.GL_TEXTURE_BINDING_2D)),
        "attribs": {loc: attrib_enabled(loc) for loc in (_POSITION_LOC, _HEIGHT_LOC)},
        "polygon_offset_fill": bool(GL.glIsEnabled(GL.GL_POLYGON_OFFSET_FILL)),
        "polygon_offset": (float(GL.glGetFloatv(GL.GL_POLYGON_OFFSET_FACTOR)),
                           float(GL.glGetFloatv(GL.GL_POLYGON_OFFSET_UNITS))),
        "blend": bool(GL.glIsEnabled(GL.GL_BLEND)),
        "blend_func": tuple(int(GL.glGetIntegerv(p)) for p in (
            GL.GL_BLEND_SRC_RGB, GL.GL_BLEND_DST_RGB, GL.GL_BLEND_SRC_ALPHA,
            GL.GL_BLEND_DST_ALPHA)),
    }


def _restore_state(s):
    for loc, enabled in s["attribs"].items():
        (GL.glEnableVertexAttribArray if enabled else GL.glDisableVertexAttribArray)(loc)
    GL.glUseProgram(s["program"])
    GL.glBindBuffer(GL.GL_ARRAY_BUFFER, s["array_buffer"])
    GL.glBindBuffer(GL.GL_ELEMENT_ARRAY_BUFFER, s["element_buffer"])
    GL.glActiveTexture(GL.GL_TEXTURE0)
    GL.glBindTexture(GL.GL_TEXTURE_2D, s["texture0"])
    GL.glActiveTexture(s["active_texture"])
    (GL.glEnable if s["polygon_offset_fill"] else GL.glDisable)(GL.GL_POLYGON_OFFSET_FILL)
    GL.glPolygonOffset(*s["polygon_offset"])
    (GL.glEnable if s["blend"] else GL.glDisable)(GL.GL_BLEND)
    GL.glBlendFuncSeparate(*s["blend_func"])
