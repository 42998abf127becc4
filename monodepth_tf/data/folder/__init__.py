from monodepth_tf.data.folder.layout import *  # noqa: F401,F403  (split next commit)
