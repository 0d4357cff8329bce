"""The one command-line convention of every `pase-*` command.

- Options are snake_case, as in ESPnet and the original PASE flags, and equal to the keys of a
  `--config` file; the kebab spelling of every option is accepted as an alias (`--batch-size`
  is `--batch_size`), so Kaldi habits and older recipes keep working.
- `--config FILE`: a YAML (or JSON) mapping of option defaults; the command line wins.
  `--print_config` prints the resolved options as such a file and exits.
- `--device`, `--ngpu` and `--num_threads` are registered by `add_device_options` and resolved
  once by `setup_device`.
- `run_main` applies the error rule: a user error (`PaseError`, or a file the system refuses)
  is one line and exit status 1; anything else is a bug and keeps its traceback, as does every
  error under `--debug`.
"""
from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import yaml

from pase.config import ConfigError, load_config
from pase.errors import PaseError

if TYPE_CHECKING:
    import torch

log = logging.getLogger("pase.bin")

# Options every command has that are not run settings (left out of --print_config).
META_OPTIONS = ("config", "print_config", "debug")
# OSError numbers caused by the user's files or machine, not by our code.
USER_ERRNOS = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.ENOSPC,
               errno.EDQUOT, errno.EROFS, errno.ENAMETOOLONG, errno.EEXIST, errno.ENOTEMPTY}


def spellings(option_strings: Iterable[str]) -> list[str]:
    """Option strings with every long option in snake_case first and its kebab alias after."""
    out: list[str] = []
    for s in option_strings:
        names = [s]
        if s.startswith("--"):
            body = s[2:]
            names = ["--" + body.replace("-", "_"), "--" + body.replace("_", "-")]
        out += [n for n in dict.fromkeys(names) if n not in out]
    return out


def str2bool(v: str) -> bool:
    """The original's 'True'/'False' string flags."""
    if v.lower() in ("true", "1", "yes"):
        return True
    if v.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {v!r}")


class _Spelled:
    """Adds the spelling rule to argparse containers (parsers and their groups)."""

    def add_argument(self, *args: str, **kwargs: Any) -> argparse.Action:
        if args and args[0].startswith("-"):
            args = tuple(spellings(args))
        return super().add_argument(*args, **kwargs)  # type: ignore[misc]

    def add_argument_group(self, *args: Any, **kwargs: Any) -> argparse._ArgumentGroup:
        group = _Group(self, *args, **kwargs)
        self._action_groups.append(group)  # type: ignore[attr-defined]
        return group

    def add_mutually_exclusive_group(self, **kwargs: Any) -> argparse._MutuallyExclusiveGroup:
        group = _MutexGroup(self, **kwargs)
        self._mutually_exclusive_groups.append(group)  # type: ignore[attr-defined]
        return group


class _Group(_Spelled, argparse._ArgumentGroup):
    pass


class _MutexGroup(_Spelled, argparse._MutuallyExclusiveGroup):
    pass


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """`--batch_size, --batch-size N` instead of repeating the metavar after every alias."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        metavar = self._format_args(action, self._get_default_metavar_for_optional(action))
        return f"{', '.join(action.option_strings)} {metavar}"


class ArgumentParser(_Spelled, argparse.ArgumentParser):
    """An argparse parser with the toolkit's convention (see the module docstring).

    `legacy_config`: the option an older `--config` meant for this command (pase-extract's
    encoder config); a file with none of this command's option names is taken as that, with a
    warning, so old command lines keep working.
    """

    def __init__(self, prog: str, description: str | None = None, *, legacy_config: str | None = None,
                 top: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        kwargs.setdefault("allow_abbrev", False)  # a prefix of --config would dodge the config pre-parse
        super().__init__(prog=prog, description=description, **kwargs)
        self.legacy_config = legacy_config
        if top:
            self.add_argument("--config", type=Path, default=None,
                              help="YAML file of option defaults (keys: option names); the command line wins")
            self.add_argument("--print_config", action="store_true",
                              help="print the resolved options in --config format and exit")
            self.add_argument("--debug", action="store_true", help="show the traceback of any error")

    def add_subparsers(self, **kwargs: Any) -> argparse._SubParsersAction:
        """Subcommand parsers follow the convention too but leave --config/--debug to the top."""
        kwargs.setdefault("parser_class", _SubParser)
        return super().add_subparsers(**kwargs)

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        argv = list(sys.argv[1:] if args is None else args)
        pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
        pre.add_argument("--config", type=Path)
        pre.add_argument("--print_config", "--print-config", action="store_true")
        known, _ = pre.parse_known_args(argv)
        if known.config is not None:
            self.apply_config(known.config)
        if not known.print_config:
            return super().parse_args(argv, namespace)
        for action in self.all_actions():
            action.required = False
            if not action.option_strings and action.nargs in (None, "+"):
                action.nargs = "?" if action.nargs is None else "*"
        print(dump_options(super().parse_args(argv, namespace)), end="")
        sys.exit(0)

    def all_actions(self) -> list[argparse.Action]:
        """This parser's actions and those of its subcommands."""
        out = []
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in dict.fromkeys(action.choices.values()):
                    out += sub.all_actions() if isinstance(sub, ArgumentParser) else sub._actions
            else:
                out.append(action)
        return out

    def apply_config(self, path: Path, only: Iterable[str] | None = None) -> None:
        """Take option defaults from `path` (every key an option; with `only`, those keys alone)."""
        cfg = {str(k).replace("-", "_"): v for k, v in load_config(path).items()}
        options = {a.dest: a for a in self.all_actions() if a.option_strings and a.dest not in META_OPTIONS}
        if only is not None:
            cfg = {k: v for k, v in cfg.items() if k in set(only)}
        unknown = sorted(set(cfg) - set(options))
        if unknown and self.legacy_config and not set(cfg) & set(options):
            log.warning("%s: --config %s taken as --%s (an older meaning of --config; use --%s)",
                        self.prog, path, self.legacy_config, self.legacy_config)
            options[self.legacy_config].default = str(path)
            return
        if unknown:
            raise ConfigError(f"{path}: unknown option(s) of {self.prog}: {', '.join(unknown)}")
        for key, value in cfg.items():
            action = options[key]
            action.default = config_value(action, value, f"{path}: {key}")
            action.required = False


class _SubParser(ArgumentParser):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(top=False, **kwargs)


def config_value(action: argparse.Action, value: Any, where: str) -> Any:
    """A config file's value for `action`, converted and checked as on the command line."""
    many = action.nargs in ("+", "*") or isinstance(action.nargs, int) and action.nargs > 1
    if many:
        items = value if isinstance(value, list) else [value]
        return [config_value_one(action, v, where) for v in items]
    if action.nargs == 0 and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    return config_value_one(action, value, where)


def config_value_one(action: argparse.Action, value: Any, where: str) -> Any:
    if isinstance(value, str) and action.type is not None:
        try:
            value = action.type(value)  # type: ignore[operator]
        except (TypeError, ValueError, argparse.ArgumentTypeError) as e:
            raise ConfigError(f"{where}: {e}") from None
    if action.choices is not None and value not in action.choices:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(str, action.choices))}")
    return value


def dump_options(args: argparse.Namespace) -> str:
    """The options of `args` as a --config file."""
    out = {k: str(v) if isinstance(v, Path) else [str(x) if isinstance(x, Path) else x for x in v]
           if isinstance(v, list) else v for k, v in vars(args).items() if k not in META_OPTIONS}
    return yaml.safe_dump(out, sort_keys=False)


# --- shared options ------------------------------------------------------------------------------

def add_encoder_options(p: argparse.ArgumentParser | argparse._ArgumentGroup, *,
                        cfg_default: str | None = "cfg/frontend/PASE+.cfg",
                        cfg_help: str = "encoder config (YAML or the original JSON)",
                        ckpt_help: str = "encoder checkpoint (e.g. the original FE_e199.ckpt)") -> None:
    """--fe_cfg and --fe_ckpt, with the names other commands used to give them (--pase_cfg, --ckpt, ...)."""
    p.add_argument("--fe_cfg", "--pase_cfg", default=cfg_default, help=cfg_help)
    p.add_argument("--fe_ckpt", "--pase_ckpt", "--ckpt", type=Path, default=None, help=ckpt_help)


def add_front_options(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--freeze_encoder, --encoder_layers, --encoder_layer_norm (pase.models.downstream.front_options)
    and --layer_weights_lr of the downstream trainers."""
    p.add_argument("--freeze_encoder", action="store_true",
                   help="read waveforms through the encoder kept fixed (no gradient, eval mode)")
    p.add_argument("--encoder_layers", default="final",
                   help="with --freeze_encoder/--finetune: final, all, or comma-separated layer indices/names "
                        "(pase-extract --layers), mixed by learnt softmax weights")
    p.add_argument("--encoder_layer_norm", action="store_true",
                   help="normalise each mixed layer (no affine) before the weighted sum")
    p.add_argument("--layer_weights_lr", type=float, default=0.01, help="Adam learning rate of the layer weights")


def add_threads_option(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--num_threads (see `set_threads`)."""
    p.add_argument("--num_threads", "--threads", type=int, default=None, help="torch CPU threads")


def add_device_options(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--device, --ngpu and --num_threads (see `setup_device`)."""
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: a GPU when there is one)")
    p.add_argument("--ngpu", type=int, default=None,
                   help="GPUs per process: 0 runs on the CPU, 1 on a GPU (with --device auto)")
    add_threads_option(p)


def set_threads(args: argparse.Namespace) -> None:
    """Apply --num_threads (torch's own default when not given)."""
    import torch

    if args.num_threads is not None:
        if args.num_threads < 1:
            raise PaseError(f"--num_threads must be >= 1, got {args.num_threads}")
        torch.set_num_threads(args.num_threads)


def setup_device(args: argparse.Namespace, local_rank: int | None = None) -> torch.device:
    """Set the torch CPU threads and return the device of --device / --ngpu.

    An explicit --device wins and must agree with --ngpu when both are given; --device auto
    takes --ngpu (0: CPU, 1: GPU), else a GPU when one is visible. `local_rank` picks this
    process's GPU under torchrun. A GPU that is asked for but missing is a user error.
    """
    import torch

    set_threads(args)
    ngpu = args.ngpu
    if ngpu is not None and not 0 <= ngpu <= 1:
        raise PaseError(f"--ngpu {ngpu}: one process drives at most one GPU; run one process per GPU "
                        "with torchrun (the pretraining recipe's --ngpu does)")
    try:
        device = torch.device(args.device) if args.device != "auto" else None
    except RuntimeError:
        raise PaseError(f"--device {args.device}: not a device (cpu, cuda, cuda:N or auto)") from None
    if device is not None and device.type not in ("cpu", "cuda"):
        raise PaseError(f"--device {args.device}: only cpu, cuda, cuda:N or auto")
    if device is not None and ngpu is not None and (device.type == "cuda") != (ngpu == 1):
        raise PaseError(f"--device {args.device} contradicts --ngpu {ngpu}")
    if device is None:
        use_cuda = torch.cuda.is_available() if ngpu is None else ngpu == 1
        device = torch.device("cuda" if use_cuda else "cpu")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise PaseError(f"--device {args.device}{'' if ngpu is None else f' --ngpu {ngpu}'}: "
                            "no GPU is visible (CUDA not available); use --device cpu")
        if local_rank is not None:
            if local_rank >= torch.cuda.device_count():
                raise PaseError(f"rank {local_rank} needs GPU {local_rank} but {torch.cuda.device_count()} "
                                "GPU(s) are visible: more processes per node than GPUs (--ngpu / "
                                "--nproc_per_node); with --ngpu 0, torchrun trains on CPU processes")
            device = torch.device("cuda", local_rank)
        elif device.index is not None and device.index >= torch.cuda.device_count():
            raise PaseError(f"--device {args.device}: only {torch.cuda.device_count()} GPU(s) visible")
    return device


# --- the error rule ------------------------------------------------------------------------------

def worker_message(text: str) -> str:
    """The original message of an error that torch re-raises from a DataLoader worker process
    (it prepends "Caught X in DataLoader worker process N" and the worker's traceback)."""
    if text.startswith("Caught ") and "Original Traceback" in text:
        last = text.rstrip().splitlines()[-1]
        return last.split(": ", 1)[1] if ": " in last else last
    return text


def user_error_message(e: BaseException) -> str | None:
    """The one line to print for a user error, or None for a bug."""
    if isinstance(e, PaseError):
        return " ".join(worker_message(str(e)).split("\n"))
    if isinstance(e, OSError) and e.errno in USER_ERRNOS:
        where = f"{e.filename}: " if e.filename else ""
        return f"{where}{e.strerror or e}"
    return None


def run_main(main: Callable[[], Any], prog: str) -> None:
    """Run an entry point: logging to stderr, a user error in one line, a bug with its traceback."""
    logging.basicConfig(level=os.environ.get("PASE_LOGLEVEL", "INFO"),
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    debug = "--debug" in sys.argv[1:]
    try:
        main()
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:
        message = None if debug else user_error_message(e)
        if message is None:
            raise
        print(f"{prog}: error: {message}", file=sys.stderr)
        sys.exit(1)
