"""Camera geometry: disparity to depth, rigid transforms, back-projection, projection, sampling.

The modules: ``depth`` (disparity to depth), ``transforms`` (axis-angle and translation to a
``[B, 4, 4]`` matrix), ``camera`` (back-projection and projection), ``sampling`` (bilinear
sampling at a grid) and ``numerics`` (the base layer and the arithmetic they share).
"""

from monodepth_tf.geometry.camera import (BackprojectDepth, CameraPoints, Grid, Project3D,
                                          backproject, grid_from_pixels, pixel_grid,
                                          pixels_from_grid, project)
from monodepth_tf.geometry.depth import disp_to_depth, reciprocal
from monodepth_tf.geometry.numerics import GeometryLayer, fused_multiply_add, matmul_small
from monodepth_tf.geometry.sampling import (BilinearSampler, Neighbourhoods, bilinear_sample,
                                            neighbourhoods, sample_neighbourhoods)
from monodepth_tf.geometry.transforms import (rotation_from_axisangle,
                                              transformation_from_parameters, translation_matrix)

__all__ = ["BackprojectDepth", "BilinearSampler", "CameraPoints", "GeometryLayer", "Grid",
           "Neighbourhoods", "Project3D", "backproject", "bilinear_sample", "disp_to_depth",
           "fused_multiply_add", "grid_from_pixels", "matmul_small", "neighbourhoods",
           "pixel_grid", "pixels_from_grid", "project", "reciprocal", "rotation_from_axisangle",
           "sample_neighbourhoods", "transformation_from_parameters", "translation_matrix"]
