"""Rendering a view: its rays, ray casting the boxes, the road and the sky box (z-buffered face
by face), and shading what each pixel shows."""

import dataclasses
import math
from typing import List, Tuple

import numpy as np

from monodepth_tf.synthetic.camera import BASELINE, Intrinsics, yaw_rotation
from monodepth_tf.synthetic.street import (GROUND, GROUND_FLOOR, NUM_SPECIAL, SKY,
                                           SKY_HALF_WIDTH, SKY_HEIGHT, SKY_X, SKY_Y, SKY_Z)
from monodepth_tf.synthetic.textures import sample_texture
from monodepth_tf.synthetic.world import FaceTable, World, weathering

NEAR = 0.05  # metres: nearer points of a face are not drawn


@dataclasses.dataclass(frozen=True)
class View:
    """One camera pose's rays; with no pitch or roll, ray x and z depend on the column only and
    ray y on the row only.

    Attributes: ``origin [3]``; ``dx, dz [W]``; ``dy [H]`` (world ray directions at camera
    z = 1, so the ray parameter is the camera z-depth); ``yaw``.
    """

    origin: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    dz: np.ndarray
    yaw: float


def make_view(intrinsics: Intrinsics, origin: np.ndarray, yaw: float) -> View:
    x = intrinsics.ray_x()
    c, s = math.cos(yaw), math.sin(yaw)
    return View(np.asarray(origin, float), c * x + s, intrinsics.ray_y(), c - s * x, yaw)


# ----------------------------------------------------------------------------- ray casting


def _far_surfaces(world: World, view: View) -> Tuple[np.ndarray, np.ndarray]:
    """Depth ``[H, W]`` and code of the road plane and the sky box, the background of all."""
    o = view.origin
    with np.errstate(divide="ignore"):
        t_ground = np.where(view.dy > 0, -o[1] / view.dy, np.inf)
        t_ceiling = np.where(view.dy < 0, (-SKY_HEIGHT - o[1]) / view.dy, np.inf)
        t_side = (np.where(view.dx >= 0, SKY_HALF_WIDTH, -SKY_HALF_WIDTH) - o[0]) / view.dx
    t_far = (world.far_z - o[2]) / view.dz
    t_rows = np.minimum(t_ground, t_ceiling)
    code_rows = np.where(t_ground <= t_ceiling, GROUND, SKY_Y)
    t_cols = np.minimum(t_side, t_far)
    code_cols = np.where(t_side <= t_far, SKY_X, SKY_Z)
    rows_win = t_rows[:, None] <= t_cols[None, :]
    depth = np.where(rows_win, t_rows[:, None], t_cols[None, :])
    code = np.where(rows_win, code_rows[:, None], code_cols[None, :]).astype(np.int32)
    return depth, code


# corners of a box are numbered 4 i + 2 j + k for (x, y, z) = (lo or hi by i, j, k)
FACE_CORNERS = [[n for n in range(8) if (n >> (2 - face // 2)) & 1 == face % 2]
                for face in range(6)]


def face_windows(world: World, view: View,
                 intrinsics: Intrinsics) -> Tuple[np.ndarray, np.ndarray]:
    """``(windows [N, 6, 4], nearest [N, 6])``: the pixel window ``(r0, r1, c0, c1)`` of each
    box face that faces the camera and may be on the image (empty, ``r0 == r1``, for the
    others) and the least depth any of its points can have."""
    b, o = world.boxes, view.origin
    corners = np.stack([b[:, [3 * i, 1 + 3 * j, 2 + 3 * k]] for i in (0, 1) for j in (0, 1)
                        for k in (0, 1)], axis=1) - o
    c, s = math.cos(view.yaw), math.sin(view.yaw)
    x, y = c * corners[..., 0] - s * corners[..., 2], corners[..., 1]
    z = s * corners[..., 0] + c * corners[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        cols = intrinsics.fx * x / z + intrinsics.cx - 1.0
        rows = intrinsics.fy * y / z + intrinsics.cy - 1.0
    windows = np.zeros((len(b), 6, 4), np.int64)
    nearest = np.zeros((len(b), 6))
    size = np.array([intrinsics.height, intrinsics.width])
    for face, picks in enumerate(FACE_CORNERS):
        axis = face // 2
        facing = o[axis] > b[:, axis + 3] if face % 2 else o[axis] < b[:, axis]
        near = z[:, picks] > NEAR
        lo = np.stack([rows[:, picks].min(1), cols[:, picks].min(1)], 1)
        hi = np.stack([rows[:, picks].max(1), cols[:, picks].max(1)], 1)
        lo = np.clip(np.floor(np.where(near.all(1)[:, None], lo, 0)), 0, size)
        hi = np.clip(np.ceil(np.where(near.all(1)[:, None], hi, size)) + 1, 0, size)
        show = facing & near.any(1) & (lo < hi).all(1)
        windows[show, face] = np.stack([lo[:, 0], hi[:, 0], lo[:, 1], hi[:, 1]], 1)[show]
        nearest[:, face] = np.where(near.all(1), z[:, picks].min(1), NEAR)
    return windows, nearest


def _draw_vertical(box, face, code, view, window, depth, codes) -> None:
    """Z-buffers a face of constant x (or z): its depth depends on the column only, and in each
    column it covers one run of rows."""
    axis, r0, r1, c0, c1 = face // 2, *window
    other = 2 - axis
    o = view.origin
    d_axis = (view.dx if axis == 0 else view.dz)[c0:c1]
    d_other = (view.dz if axis == 0 else view.dx)[c0:c1]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (box[axis + 3 * (face % 2)] - o[axis]) / d_axis
        hit = o[other] + t * d_other
        ok = (t > NEAR) & (hit >= box[other]) & (hit <= box[other + 3])
        t = np.where(ok, t, 1.0)
        first = np.searchsorted(view.dy, (box[1] - o[1]) / t, "left")
        last = np.searchsorted(view.dy, (box[4] - o[1]) / t, "right")
    first, last = np.where(ok, np.maximum(first, r0), r1), np.where(ok, np.minimum(last, r1), r0)
    if not ok.any() or first.min() >= last.max():
        return
    r0, r1 = int(first.min()), int(last.max())
    rows = np.arange(r0, r1)[:, None]
    z_win, c_win = depth[r0:r1, c0:c1], codes[r0:r1, c0:c1]
    mask = (rows >= first) & (rows < last) & (t < z_win)
    np.copyto(z_win, np.broadcast_to(t, z_win.shape), where=mask)
    np.copyto(c_win, code, where=mask)


def _draw_horizontal(box, face, code, view, window, depth, codes) -> None:
    """Z-buffers a face of constant y: its depth depends on the row only."""
    r0, r1, c0, c1 = window
    o = view.origin
    dy = view.dy[r0:r1]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = ((box[1 + 3 * (face % 2)] - o[1]) / dy)[:, None]
        hx = o[0] + t * view.dx[None, c0:c1]
        hz = o[2] + t * view.dz[None, c0:c1]
    z_win, c_win = depth[r0:r1, c0:c1], codes[r0:r1, c0:c1]
    mask = ((t > NEAR) & (hx >= box[0]) & (hx <= box[3]) & (hz >= box[2]) & (hz <= box[5])
            & (t < z_win))
    np.copyto(z_win, np.broadcast_to(t, z_win.shape), where=mask)
    np.copyto(c_win, code, where=mask)


def cast(world: World, view: View, intrinsics: Intrinsics) -> Tuple[np.ndarray, np.ndarray]:
    """Ray casts a view: ``(depth [H, W] float64 camera z, code [H, W] int32 surface hit)``."""
    depth, codes = _far_surfaces(world, view)
    windows, nearest = face_windows(world, view, intrinsics)
    index, face = np.nonzero(windows[:, :, 0] < windows[:, :, 1])
    order = np.argsort(nearest[index, face], kind="stable")  # near faces hide far ones
    for i, f in zip(index[order], face[order]):
        r0, r1, c0, c1 = windows[i, f]
        if depth[r0:r1, c0:c1].max() <= nearest[i, f]:
            continue  # everything in its window is already nearer
        draw = _draw_horizontal if f // 2 == 1 else _draw_vertical
        draw(world.boxes[i], f, 6 * i + f, view, windows[i, f], depth, codes)
    return depth, codes


# ----------------------------------------------------------------------------- shading


def _footprints(axis: np.ndarray, t: np.ndarray, d, yaw: float,
                intrinsics: Intrinsics) -> np.ndarray:
    """World size (metres) of each pixel on the surface it shows: the longer of the surface
    displacements caused by a one-pixel step along the image x and y.

    Args: ``axis [N]`` normal axis of the hit face, ``t [N]`` depth, ``d`` (dx, dy, dz) ``[N]``
    ray directions.
    """
    dx, dy, dz = d
    c, s = math.cos(yaw), math.sin(yaw)
    step_u = np.ones_like(t)  # image-x step on horizontal faces: t / fx
    step_v = np.ones_like(t)  # image-y step on vertical faces: t / fy
    for normal in np.flatnonzero(np.bincount(axis, minlength=3)):
        on = axis == normal
        if normal == 0:
            q = c / dx[on]
            step_u[on] = np.hypot(dy[on] * q, s + dz[on] * q)
        elif normal == 2:
            q = -s / dz[on]
            step_u[on] = np.hypot(c - dx[on] * q, dy[on] * q)
        else:
            step_v[on] = np.hypot(dx[on], dz[on]) / np.abs(dy[on])
    return t * np.maximum(step_u / intrinsics.fx, step_v / intrinsics.fy)


def _sky_colour(height: np.ndarray, clouds: np.ndarray, fade: np.ndarray) -> np.ndarray:
    """Haze near the horizon, blue aloft, clouds on top: ``[N, 3]``."""
    aloft = np.sqrt(np.clip(height / SKY_HEIGHT, 0, 1))[:, None]
    base = np.array([0.8, 0.85, 0.9]) * (1 - aloft) + np.array([0.42, 0.6, 0.88]) * aloft
    cover = (clouds * fade)[:, None]
    return base * (1 - cover) + np.array([0.97, 0.97, 0.98]) * cover


def group_indices(keys: np.ndarray, count: int) -> List[np.ndarray]:
    """For each value ``0 .. count - 1`` of the small non-negative integers ``keys [N]``, the
    indices holding it (ascending)."""
    order = np.argsort(keys.astype(np.uint8), kind="stable")
    return np.split(order, np.cumsum(np.bincount(keys, minlength=count))[:-1])


@dataclasses.dataclass
class _Hits:
    """Surface hits of some pixels: texture coordinates ``a, b [N]`` (metres, scaled),
    ``footprint [N]`` (metres), world ``point`` (3 arrays ``[N]``), face-table ``face [N]``."""

    a: np.ndarray
    b: np.ndarray
    footprint: np.ndarray
    point: Tuple[np.ndarray, np.ndarray, np.ndarray]
    face: np.ndarray


def _hits(table: FaceTable, view: View, depth: np.ndarray, face: np.ndarray,
          pixels: np.ndarray, intrinsics: Intrinsics) -> _Hits:
    """Where the rays of ``pixels [N]`` (flat indices) meet their faces ``face [N]``."""
    rows, cols = np.divmod(pixels, intrinsics.width)
    t = depth.ravel()[pixels].astype(np.float32)
    d = tuple(v.astype(np.float32)[i] for v, i in ((view.dx, cols), (view.dy, rows),
                                                   (view.dz, cols)))
    point = tuple(np.float32(view.origin[i]) + t * d[i] for i in range(3))
    axis, scale = table.axis[face], table.scale[face]
    a = (np.where(axis == 0, point[2], point[0]) - table.origin[face]) * scale[:, 0]
    b = np.where(axis == 1, point[2], -point[1]) * scale[:, 1]
    footprint = _footprints(axis, t, d, view.yaw, intrinsics) * np.maximum(scale[:, 0],
                                                                           scale[:, 1])
    return _Hits(a, b, footprint, point, face)


def _surface_colour(world: World, table: FaceTable, material: int, hits: _Hits) -> np.ndarray:
    """``[N, 3]`` shaded colour of hits on one material (facades: ground floor below 3 m)."""
    if material == SKY:
        clouds = sample_texture(world.textures[SKY], hits.a, hits.b, hits.footprint)[:, 0]
        x, y, z = hits.point
        fade = np.clip(np.minimum(SKY_HALF_WIDTH - np.abs(x), world.far_z - z) / 150.0, 0, 1)
        return _sky_colour(-y, clouds, fade)
    if material in GROUND_FLOOR:  # both facade textures have a tint channel
        texel = np.empty((len(hits.a), 4), np.float32)
        ground = hits.b < 3.0
        for name, chosen in ((material, ~ground), (GROUND_FLOOR[material], ground)):
            texel[chosen] = sample_texture(world.textures[name], hits.a[chosen], hits.b[chosen],
                                           hits.footprint[chosen])
    else:
        texel = sample_texture(world.textures[material], hits.a, hits.b, hits.footprint)
    albedo = texel[:, :3]
    if texel.shape[1] == 4:
        weight = texel[:, 3:]
        albedo = albedo * (1 - weight + weight * table.tint[hits.face])
    return albedo * table.shade[hits.face, None] * weathering(world.waves, hits.point)


def shade(world: World, table: FaceTable, view: View, depth: np.ndarray, codes: np.ndarray,
          intrinsics: Intrinsics) -> np.ndarray:
    """The colour ``[H, W, 3]`` float32 in [0, 1] of a cast view."""
    face = (codes + NUM_SPECIAL).ravel()
    colour = np.empty((face.size, 3), np.float32)
    for material, pixels in enumerate(group_indices(table.surface[face], len(world.textures))):
        if len(pixels):
            hits = _hits(table, view, depth, face[pixels], pixels, intrinsics)
            colour[pixels] = _surface_colour(world, table, material, hits)
    return np.clip(colour, 0, 1).reshape(*depth.shape, 3)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(image * 255.0).astype(np.uint8)


def render_frame(world: World, table: FaceTable, intrinsics: Intrinsics, position: np.ndarray,
                 yaw: float, camera: int = 2) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One camera (2 left, 3 right) of the rig whose left camera is at ``position``:
    ``(image [H, W, 3] uint8 RGB, depth [H, W] float64, code [H, W] int32)``."""
    if camera == 3:
        position = position + yaw_rotation(yaw) @ np.array([BASELINE, 0.0, 0.0])
    view = make_view(intrinsics, position, yaw)
    depth, codes = cast(world, view, intrinsics)
    return to_uint8(shade(world, table, view, depth, codes, intrinsics)), depth, codes
