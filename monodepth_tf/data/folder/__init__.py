"""Your own footage: a dataset of image sequences or video files with their intrinsics.

Layout of ``DIR`` (``--dataset folder --data_path DIR``)::

    DIR/intrinsics.json                  the camera of every sequence (or calib_cam_to_cam.txt)
    DIR/<sequence>/<frame>.jpg|png       a sequence of frames, ordered by name (natural order:
                                         frame_2 before frame_10)
    DIR/<sequence>/intrinsics.json       this sequence's own camera (overrides DIR's)
    DIR/<sequence>/left/, right/         a stereo sequence: the same frame names in both
    DIR/<name>.mp4|avi|mov               a video (decoded once, see below)
    DIR/<name>.intrinsics.json           this video's own camera (overrides DIR's)

``intrinsics.json`` holds ``fx, fy, cx, cy`` in pixels and the ``width, height`` of the images
they refer to; optionally ``baseline`` (stereo, in the unit depth is wanted in) and ``fps``
(frame folders, for ``target_fps``). A KITTI ``calib_cam_to_cam.txt`` is read instead when
there is no ``intrinsics.json`` (``P_rect_02``, ``S_rect_02``; baseline from ``P_rect_03``).
The intrinsics are normalized as the KITTI path's (row 0 divided by the width, row 1 by the
height; see :data:`monodepth_tf.data.pipeline.NORMALIZED_K`), so any image size works; a
principal point more than ``FLIP_TOLERANCE`` of the image from the centre disables horizontal
flips for that sequence (a flipped image would need another principal point), with a warning.

Videos are decoded once, with OpenCV, into PNG frames in a cache folder (``DIR/.frames/`` by
default): tf.data then reads frames as files, in parallel and by index, exactly as the KITTI
path (decoding a video on the fly would mean seeking inside a compressed stream, which is slow,
runs under Python's lock, and lands on frames that depend on the codec's key frames). The cache
is keyed by the video's size, modification time and the frame stride, and rebuilt when they
change; PNG is lossless, so a cached frame is the decoded frame.

Subsampling: ``frame_stride`` keeps every N-th frame (videos: applied while decoding, so that
the cache holds only kept frames), ``target_fps`` chooses the stride from the frame rate
(``round(fps / target_fps)``); ``skip_static`` then drops, greedily, every frame whose mean
absolute difference (RGB in [0, 1], frames area-reduced to at most ``MOTION_WIDTH`` pixels
wide) to the last kept frame is below the threshold, so that consecutive kept frames moved.

Samples are :class:`~monodepth_tf.data.kitti.SplitEntry` s whose ``folder`` is the sequence
name and ``frame_index`` the position in the sequence's kept frames (offsets -1, +1 are the
neighbouring kept frames); side ``l`` (and ``r`` for stereo sequences). With no split given,
:func:`make_splits` divides the sequences into train and val and :func:`write_splits` writes
them where ``--split_dir``/``--split`` can read them again.

Modules, each importing only the ones above it: ``camera_files`` (intrinsics.json, KITTI
calibration), ``image_header`` (image sizes), ``motion``, ``video`` (the decode cache),
``layout`` (:class:`FolderLayout`), ``splits`` (making, writing and opening the lists) and
``check`` (what ``bin/check_data`` reports).
"""

from monodepth_tf.data.folder.camera_files import (INTRINSICS_FILE, KITTI_CALIB_FILE,
                                                   REQUIRED_FIELDS, CameraFile, find_camera,
                                                   read_intrinsics, read_kitti_calib)
from monodepth_tf.data.folder.check import SequenceReport, check_folder, format_reports
from monodepth_tf.data.folder.image_header import image_size
from monodepth_tf.data.folder.layout import (IMAGE_SUFFIXES, VIDEO_SUFFIXES, FolderLayout,
                                             FolderOptions, FrameSequence, list_frames)
from monodepth_tf.data.folder.motion import frame_motion, skip_static_frames
from monodepth_tf.data.folder.splits import (SPLIT_NAME, folder_samples, make_splits,
                                             open_folder_data, open_splits, write_splits)
from monodepth_tf.data.folder.video import decode_video

__all__ = ["CameraFile", "FolderLayout", "FolderOptions", "FrameSequence", "IMAGE_SUFFIXES",
           "INTRINSICS_FILE", "KITTI_CALIB_FILE", "REQUIRED_FIELDS", "SPLIT_NAME",
           "SequenceReport", "VIDEO_SUFFIXES", "check_folder", "decode_video", "find_camera",
           "folder_samples", "format_reports", "frame_motion", "image_size", "list_frames",
           "make_splits", "open_folder_data", "open_splits", "read_intrinsics",
           "read_kitti_calib", "skip_static_frames", "write_splits"]
