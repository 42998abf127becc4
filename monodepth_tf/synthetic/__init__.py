"""A synthetic street written in KITTI's raw layout, with the exact depth of every pixel.

The world (metres; x right, y down, z forward along the street; the road surface is y = 0 and
the cameras ride 1.65 m above it, as on KITTI's car) is a 2.5D street: an asphalt road with lane
markings between kerbed sidewalks, a front row of buildings at varying set-backs with windows
and doors, a taller back row seen through the alleys, street lamps, parked cars and bins, all
axis-aligned boxes; and around everything a "sky box" hundreds of metres away (far walls and a
cloud ceiling), so every pixel has a finite, exact depth. Every surface is textured (value
noise, bricks, slabs, stripes, windows), weathered (a smooth brightness field over space with
metres-long waves) and shaded by a fixed sun (Lambert), so photometric losses have gradients
everywhere, and, thanks to the weathering, still order wrong disparities tens of pixels off
(fine textures alone leave the loss flat there, and training from scratch stalls). Textures
are mip-mapped (box-filtered pyramids sampled trilinearly at each pixel's footprint) so distant
surfaces do not alias.

A stereo rig with KITTI's rectified intrinsics (2011_09_26 ``P_rect_02``, rescaled to the image
size) and a 0.54 m baseline drives along the street with varying speed and gentle yaw. Views are
ray cast: for pixel ``(row r, column c)`` the ray ``o + t R (x, y, 1)`` with ``x = (c + 1 - cx) /
fx``, ``y = (r + 1 - cy) / fy`` has camera z-depth ``t``. The ``+ 1`` puts pixel centres where
KITTI's LiDAR recipe (``pixel = round(u / w) - 1``) expects them, so a point sampled from a
pixel's ray projects back onto that pixel.

Depth convention: the camera's forward z (metres), float32. The LiDAR points of a frame lie on
the rays of left-camera pixels at those pixels' exact depth; the velodyne frame (x forward,
y left, z up) differs from the camera frame by a permutation and a translation with no forward
component, so a point's velodyne x equals its camera z equals the depth of its pixel.

Modules, each importing only the ones above it: ``street`` (dimensions, object kinds,
materials, pixel codes), ``camera`` (intrinsics, the drive), ``textures``, ``world`` (boxes,
weathering, face table), ``raycast`` (views, casting, shading), ``lidar``, ``writer`` (KITTI's
files) and ``generate`` (the process pool, :func:`make_synthetic_kitti`). Nothing here imports
TensorFlow, so the pool's "spawn" children start quickly.
"""

from monodepth_tf.synthetic.camera import BASELINE, KITTI_HEIGHT, KITTI_WIDTH, Intrinsics
from monodepth_tf.synthetic.generate import SyntheticSummary, make_synthetic_kitti
from monodepth_tf.synthetic.writer import DATE, drive_folder

__all__ = ["BASELINE", "DATE", "KITTI_HEIGHT", "KITTI_WIDTH", "Intrinsics", "SyntheticSummary",
           "drive_folder", "make_synthetic_kitti"]
