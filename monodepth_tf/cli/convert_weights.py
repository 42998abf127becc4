"""bin/convert_weights: the original's PyTorch checkpoints -> a monodepth_tf weights folder.

    bin/convert_weights --pytorch_dir models/mono_640x192 --output_dir weights/mono_640x192

Reads encoder.pth, depth.pth and, when present, pose_encoder.pth + pose.pth (or a PoseCNN's
pose.pth), in either PyTorch format, without PyTorch. The architecture and the feed size
(the ``height``/``width`` keys the original stores in encoder.pth) come from the files.
"""

from absl import flags

from monodepth_tf.cli.common import run_tool
from monodepth_tf.files import check_output_folder
from monodepth_tf.weights.folder import convert_pytorch_folder

flags.DEFINE_string("pytorch_dir", None, "Folder with the original's encoder.pth, depth.pth, "
                    "and optionally pose_encoder.pth and pose.pth.")
flags.DEFINE_string("output_dir", None, "Weights folder to write (config.json + *.weights.h5).")
flags.mark_flags_as_required(["pytorch_dir", "output_dir"])


def main(argv):
    del argv
    args = flags.FLAGS
    check_output_folder(args.output_dir, "--output_dir")
    config, parts = convert_pytorch_folder(args.pytorch_dir, args.output_dir,
                                           extra={"converted_from": str(args.pytorch_dir)})
    print(f"converted {', '.join(parts)} (ResNet-{config.num_layers}, feed size "
          f"{config.width}x{config.height}, pose: {config.pose_model_type}) -> {args.output_dir}")


def run():
    run_tool(main)
