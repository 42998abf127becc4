"""What every command-line tool shares: how it reports a user's mistake, and how it finds and
loads the networks that ``--load_weights_folder`` or ``--model_zoo`` name (a folder, or a model
name such as ``mono_640x192``, downloaded on first use; see :mod:`monodepth_tf.weights.zoo`)."""

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Tuple

from absl import app

WEIGHTS_FLAG = "load_weights_folder"
NAME_FLAG = "model_zoo"
# --runtime of the tools that run the depth network: DisparityPredictor's runtimes
# (monodepth_tf.inference.predictor.RUNTIMES, named here without importing TensorFlow)
RUNTIMES = ("tensorflow", "openvino")
RUNTIME_HELP = ("Run the depth network in TensorFlow, or in OpenVINO in float32 (the same "
                "disparities to float32 rounding; speeds: the README's Speed section; needs "
                "pip install 'monodepth_tf[openvino]').")


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
        folder: the weights folder (``--load_weights_folder``, or a model name's cached folder).
        config: its architecture and feed size (a ``weights.folder.ModelConfig``).
        depth: the ``DepthNet``, None when the tool did not ask for it.
        pose: the ``PoseNet``, None when the tool did not ask for it.

    (Typed ``Any`` here: the tools import this module before TensorFlow, which the networks'
    modules load, is needed.)
    """

    folder: Path
    config: Any
    depth: Optional[Any]
    pose: Optional[Any]


def _weights_flags_given(args, name_flags: Sequence[str]) -> List[Tuple[str, str]]:
    """``[(flag, value)]`` of the weights flags that are set, ``--load_weights_folder`` first."""
    given = [(flag, getattr(args, flag, None)) for flag in (WEIGHTS_FLAG, *name_flags)]
    return [(flag, value) for flag, value in given if value]


def _join(words) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    words = list(words)
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def weights_folder_from_flags(args, hint: str = "",
                              name_flags: Sequence[str] = (NAME_FLAG,)) -> Path:
    """The weights folder that ``args.load_weights_folder`` or a model-name flag names, checked
    to exist; nothing is loaded. A name is downloaded and converted on first use (see
    :mod:`monodepth_tf.weights.zoo`); an existing folder always wins over a name of the same
    spelling.

    Args:
        args: the tool's parsed flags (any object with the attributes).
        hint: appended to the message when no flag is set (what else the tool accepts).
        name_flags: the flags that take a model name (``model_zoo``; bin/predict also
            ``model_name``); ``--load_weights_folder`` takes a folder or a name.

    Raises:
        ValueError: more than one or none of the flags set, or a value that is neither a
            folder nor a known name (the message names the flag); the zoo's download errors
            (OSError) and archive errors (ValueError).
    """
    from monodepth_tf.weights import zoo

    given = _weights_flags_given(args, name_flags)
    flags_text = _join(f"--{flag}" for flag in (WEIGHTS_FLAG, *name_flags))
    if len(given) > 1:
        raise ValueError(f"give exactly one of {flags_text}, not "
                         f"{_join('--' + flag for flag, _ in given)}")
    if not given:
        raise ValueError(f"give exactly one of {flags_text} (none is set){hint}")
    flag, value = given[0]
    if flag == WEIGHTS_FLAG:
        return zoo.find_weights(value, f"--{flag}")
    if Path(value).expanduser().is_dir():
        return Path(value).expanduser()
    try:
        return zoo.weights_folder(value)
    except zoo.UnknownModelError as error:
        raise zoo.UnknownModelError(f"--{flag}: {error}") from None


def load_networks_from_flags(args, with_depth: bool = True, with_pose: bool = False,
                             check_config: Optional[Callable] = None, hint: str = "",
                             name_flags: Sequence[str] = (NAME_FLAG,)) -> LoadedNetworks:
    """Resolves ``--load_weights_folder`` / a model-name flag and loads the networks asked for.

    Args:
        args: the tool's parsed flags (``load_weights_folder``, ``model_zoo``, ...).
        with_depth: load the depth network.
        with_pose: load the pose network (with ``with_depth`` False, an error when the
            folder has none).
        check_config: ``check_config(config, folder)`` raises when the folder's architecture
            does not suit the tool (called before the weights are read from a folder; after
            the zoo's own checks for a name).
        hint, name_flags: see :func:`weights_folder_from_flags`.

    Raises:
        ValueError (WeightsFolderError, zoo errors), OSError (downloads): see
            :func:`weights_folder_from_flags`; a folder whose files are missing or do not fit
            (the message names the file).
    """
    from monodepth_tf.weights import zoo
    from monodepth_tf.weights.folder import load_networks

    if not (with_depth or with_pose):
        raise TypeError("load_networks_from_flags: ask for the depth or the pose network")
    folder = weights_folder_from_flags(args, hint, name_flags)
    name = next(value for flag, value in _weights_flags_given(args, name_flags))
    if zoo.is_model_name(name) and not Path(name).expanduser().is_dir():
        config, depth, pose = zoo.load(name, with_pose=with_pose)
        if check_config is not None:
            check_config(config, folder)
        return LoadedNetworks(folder, config, depth if with_depth else None, pose)
    config, depth, pose = load_networks(folder, with_pose, with_depth, check_config)
    return LoadedNetworks(folder, config, depth, pose)


def check_runtime(runtime: str) -> None:
    """``--runtime``: its package importable, checked before anything is loaded (ValueError
    naming the flag and what to install otherwise)."""
    if runtime == "openvino":
        from monodepth_tf.inference.openvino import require_openvino

        require_openvino("--runtime=openvino")
