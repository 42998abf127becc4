"""What every command-line tool shares: how it reports a user's mistake, and how it finds and
loads the networks that ``--load_weights_folder`` or ``--model_zoo`` name."""

import dataclasses
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from absl import app

if TYPE_CHECKING:  # the tools import this module before TensorFlow is needed
    from monodepth_tf.models import DepthNet, PoseNet
    from monodepth_tf.weights.folder import NetworkConfig

BOTH_WEIGHTS_FLAGS = "give exactly one of --load_weights_folder and --model_zoo, not both"
NO_WEIGHTS_FLAG = "give exactly one of --load_weights_folder and --model_zoo (neither is set)"


def run_tool(main, flags_parser=None) -> None:
    """Runs an absl ``main``; bad input (a ValueError or OSError raised by the library, whose
    messages name the file or flag at fault) ends the tool with that message and exit code 2
    instead of a traceback. Set MONODEPTH_DEBUG=1 to see the traceback. ``flags_parser``:
    absl's ``app.run`` argument (argv -> the arguments left after parsing flags)."""

    def guarded(argv):
        try:
            return main(argv)
        except (ValueError, OSError) as error:
            if os.environ.get("MONODEPTH_DEBUG"):
                raise
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)

    if flags_parser is None:
        app.run(guarded)
    else:
        app.run(guarded, flags_parser=flags_parser)


@dataclasses.dataclass
class LoadedNetworks:
    """The networks a tool runs and where they came from.

    Attributes:
        folder: the weights folder (``--load_weights_folder``, or the zoo name's local folder).
        config: its architecture and feed size.
        depth: the depth network, None when the tool did not ask for it.
        pose: the pose network, None when the tool did not ask for it.
    """

    folder: Path
    config: "NetworkConfig"
    depth: Optional["DepthNet"]
    pose: Optional["PoseNet"]


def weights_folder_from_flags(args, hint: str = "") -> Path:
    """The weights folder that ``args.load_weights_folder`` or ``args.model_zoo`` names,
    checked to exist; nothing is loaded.

    Args:
        args: the tool's parsed flags (any object with both attributes).
        hint: appended to the message when neither flag is set (what else the tool accepts).

    Raises:
        ValueError: both or neither flag set, or the folder does not exist (named);
            zoo.UnknownModelError, zoo.ZooWeightsMissing: a zoo name that is unknown or whose
            local folder holds no weights.
    """
    if args.load_weights_folder and args.model_zoo:
        raise ValueError(BOTH_WEIGHTS_FLAGS)
    if args.model_zoo:
        from monodepth_tf import zoo

        return zoo.weights_folder(args.model_zoo)
    if not args.load_weights_folder:
        raise ValueError(NO_WEIGHTS_FLAG + hint)
    folder = Path(args.load_weights_folder).expanduser()
    if not folder.is_dir():
        raise ValueError(f"--load_weights_folder {folder} does not exist")
    return folder


def load_networks_from_flags(args, with_depth: bool = True, with_pose: bool = False,
                             check_config: Optional[Callable] = None,
                             hint: str = "") -> LoadedNetworks:
    """Resolves ``--load_weights_folder`` / ``--model_zoo`` and loads the networks asked for.

    Args:
        args: the tool's parsed flags (``load_weights_folder``, ``model_zoo``).
        with_depth: load the depth network.
        with_pose: load the pose network (with ``with_depth`` False, an error when the
            folder has none).
        check_config: ``check_config(config, folder)`` raises when the folder's architecture
            does not suit the tool (called before the weights are read from a folder; after
            the zoo's own checks for a zoo name).
        hint: see :func:`weights_folder_from_flags`.

    Raises:
        ValueError (WeightsFolderError, zoo errors): see :func:`weights_folder_from_flags`; a
            folder whose files are missing or do not fit (the message names the file).
    """
    from monodepth_tf.weights.folder import load_networks

    if not (with_depth or with_pose):
        raise TypeError("load_networks_from_flags: ask for the depth or the pose network")
    folder = weights_folder_from_flags(args, hint)
    if args.model_zoo:
        from monodepth_tf import zoo

        config, depth, pose = zoo.load(args.model_zoo, with_pose=with_pose)
        if check_config is not None:
            check_config(config, folder)
        return LoadedNetworks(folder, config, depth if with_depth else None, pose)
    config, depth, pose = load_networks(folder, with_pose, with_depth, check_config)
    return LoadedNetworks(folder, config, depth, pose)
