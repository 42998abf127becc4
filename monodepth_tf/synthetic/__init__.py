from monodepth_tf.synthetic.generate import *  # noqa: F401,F403  (split next commit)
