"""Every `pilot ...` command that README.md (and docs/) shows and every example in `pilot ... --help`
runs, so the documentation cannot drift from the CLI.

Quick commands run as written, in a scratch folder. Long ones keep all their arguments
but run with a small budget: training gets `--steps 64`, watch and eval a few short
episodes. Atari training is parsed and resolved instead (algorithm, env id and its
options, `--config`, `--set`) without training, because its first update is the
expensive part; the one Atari run a command needs (`--protocol`) trains 64 steps with one
env and 64-step rollouts. Placeholders (`RUN`, `runs/CartPole-v1__ppo__1__...`) stand for a tiny run
of the algorithm and env the README trained last before them (or that the path names);
files the commands name (`my.yaml`, `arena.map`) are made first.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pilot import cli
from pilot.config import load_yaml, parse_overrides, to_dict

README = Path(__file__).resolve().parents[1] / "README.md"
DOCS_DIR = README.parent / "docs"  # pages the README links to
COMMANDS = tuple(cli.COMMANDS)
STEPS = "64"  # training budget of every documented training command
#: Atari runs made for watch/eval placeholders: one env, small rollouts / replay
ATARI_FAST = {"ppo": ["n_envs=1", "n_steps=64"], "dqn": ["n_envs=1", "buffer_size=1000"]}
RUN_PATH = re.compile(r"^runs/(?P<env>.+?)__(?P<algo>[a-z0-9]+)__")


@dataclasses.dataclass
class Doc:
    """One documented command: ``argv`` after ``pilot``, where it is written, and the
    training command before it in the same block (what ``RUN`` refers to)."""

    argv: list[str]
    where: str
    context: list[str] | None = None
    check: str = "run"  # or "checkpoint-name": an example of a checkpoint's name

    @property
    def id(self) -> str:
        text = f"{self.where}: pilot {' '.join(self.argv)}"
        return text if len(text) <= 100 else text[:97] + "..."


# --------------------------------------------------------------------------- extraction
def _pilot_commands(line: str) -> list[list[str]]:
    """The `pilot ...` commands on one shell line: in the code (split at && ; |) and in
    its comment (`# ...; pilot bench mcts --help`)."""
    line = re.sub(
        r"\$\(seq (\d+) (\d+)\)",
        lambda m: " ".join(str(i) for i in range(int(m[1]), int(m[2]) + 1)),
        line,
    )
    code, _, comment = line.partition("  #")
    lexer = shlex.shlex(code, posix=True, punctuation_chars="&;|")
    lexer.whitespace_split = True
    segments: list[list[str]] = [[]]
    for token in lexer:
        if token in ("&&", ";", "|", "||"):
            segments.append([])
        else:
            segments[-1].append(token)
    found = [seg[1:] for seg in segments if seg[:1] == ["pilot"]]
    for m in re.finditer(rf"\bpilot ((?:{'|'.join(COMMANDS)})\b[^;,]*)", comment):
        found.append(shlex.split(m[1]))
    return found


def _trains(argv: list[str]) -> bool:
    return argv[:1] == ["train"] and "--env" in argv and "--resume" not in argv


def readme_commands() -> list[Doc]:
    """The commands of README.md and of the pages under docs/ (a command already shown,
    with the same training before it, is checked once)."""
    docs, seen = [], set()
    for path in (README, *sorted(DOCS_DIR.glob("*.md"))):
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(README.parent).as_posix()
        for block in re.finditer(r"^```bash\n(.*?)^```", text, re.S | re.M):
            first = text[: block.start(1)].count("\n") + 1
            context = None
            for i, line in enumerate(block[1].splitlines()):
                for argv in _pilot_commands(line):
                    key = (tuple(argv), tuple(context or ()))
                    if key not in seen:
                        seen.add(key)
                        docs.append(Doc(argv, f"{name}:{first + i}", context))
                    if _trains(argv):
                        context = argv
    return docs


#: what an option's "e.g." example is added to, per command
BASES = {
    "train": ["train", "ppo", "--env", "CartPole-v1"],
    "watch": ["watch", "RUN"],
    "eval": ["eval", "RUN"],
    "plan": ["plan", "--map", "arena.map", "--scen", "arena.map.scen"],
    "list": ["list"],
    "bench": ["bench"],
    "perception": ["perception", "collect", "data/examples", "--split", "train", "--seeds", "0"],
    "sweep": ["sweep", "sweep.yaml"],
    "leaderboard": ["leaderboard", "run", "my_spec.yaml"],
}


def help_commands() -> list[Doc]:
    """Examples in the parsers' descriptions and epilogs (lines starting with `pilot `) and
    in option help (`e.g. --set KEY=VALUE`, `e.g. CartPole-v1 or ...`)."""
    docs: list[Doc] = []

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> None:
        where = f"`{' '.join(['pilot', *path])} --help`"
        for text in (parser.description, parser.epilog):
            for line in (text or "").splitlines():
                if line.strip().startswith("pilot "):
                    docs.append(Doc(shlex.split(line.strip(), comments=True)[1:], where))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, [*path, name])
            elif action.help and path:
                for example in re.findall(r"e\.g\. ([^,;)]+)", action.help):
                    docs.extend(_option_examples(path[0], action, example.strip(), where))

    walk(cli._build_parser(), [])
    return docs


def _option_examples(command: str, action: argparse.Action, example: str, where: str):
    base = BASES[command]
    if example.startswith("-"):  # a whole fragment: e.g. --set learning_rate=3e-4
        yield Doc([*base, *shlex.split(example)], where)
        return
    option = action.option_strings[-1]
    for value in re.split(r" or |, ", example):
        if option == "--checkpoint":  # names a checkpoint of a run: checked by its form
            yield Doc([command, "--resume", "RUN", option, value], where, check="checkpoint-name")
            continue
        argv = list(base)
        if option in argv:  # the example replaces the base's value
            del argv[argv.index(option) : argv.index(option) + 2]
        yield Doc([*argv, option, value], where)


DOCS = readme_commands() + help_commands()


def test_the_documentation_has_commands():
    where = {d.where.split(":")[0] for d in DOCS}
    assert "README.md" in where and any("--help" in w for w in where)
    assert len(readme_commands()) >= 20
    shown = {" ".join(d.argv) for d in DOCS}
    assert "train ppo --help-config" in shown and "bench mcts --help" in shown


# --------------------------------------------------------------------------- workspace
class Workspace:
    """A scratch folder with the files the commands name, and tiny runs made on demand."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.fixtures = root / "fixtures"
        self.runs: dict[tuple, Path] = {}
        (root / "my.yaml").write_text("log_every: 32\n")
        # the spec files the README's sweep and leaderboard commands name, at tiny budgets
        (root / "sweep.yaml").write_text(
            "algo: ppo\nenv: CartPole-v1\nseeds: 0\nsteps: 64\n"
            "grid: {learning_rate: [1.0e-3, 3.0e-4]}\n"
        )
        (root / "my_spec.yaml").write_text(
            "name: my-board\nseeds: [0]\nepisodes: 1\n"
            "entries: [{name: random, builtin: random}]\n"
            "tracks: [{name: cartpole, env: CartPole-v1}]\n"
        )
        for doc in DOCS:  # maps the README makes and then plans on
            if doc.argv[:2] == ["plan", "--generate"]:
                assert _main(doc.argv, root) == 0, doc.id
        _main(["plan", "--generate", "rooms", "--size", "48", "--out", "arena.map"], root)

    def run_for(self, train: list[str]) -> Path:
        """A tiny run of the training command ``train`` (its algorithm, env and options)."""
        key = tuple(train)
        if key not in self.runs:
            args = cli._build_parser().parse_args(train)
            fast = ATARI_FAST.get(args.algo, ["n_envs=1"]) if "Atari-" in args.env else []
            argv = [*train, *_sets(tuple(fast))]
            argv = _with(_with(argv, "--steps", STEPS), "--no-progress")
            argv = _with(argv, "--runs-dir", str(self.fixtures))
            before = _listing(self.fixtures)
            assert _main(argv, self.root) == 0, argv
            (self.runs[key],) = _listing(self.fixtures) - before
        return self.runs[key]

    def run_of(self, doc: Doc, token: str) -> Path:
        """The tiny run a placeholder stands for: the one its path names, else one of the
        training command before it (an Atari game for the Atari-only --protocol)."""
        named = RUN_PATH.match(token)
        if named:
            env = named["env"].replace("pilot-", "pilot/", 1)
            return self.run_for(["train", named["algo"], "--env", env])
        train = doc.context or ["train", "ppo", "--env", "CartPole-v1"]
        if "--protocol" in doc.argv and not any("Atari-" in t for t in train):
            train = ["train", "ppo", "--env", "pilot/Atari-Pong-v0"]
        return self.run_for(train)

    def substitute(self, doc: Doc) -> list[str]:
        return [
            str(self.run_of(doc, t)) if t == "RUN" or RUN_PATH.match(t) else t for t in doc.argv
        ]


def _sets(sets: tuple[str, ...]) -> list[str]:
    return [x for s in sets for x in ("--set", s)]


def _listing(folder: Path) -> set[Path]:
    return set(folder.iterdir()) if folder.is_dir() else set()


def _main(argv: list[str], cwd: Path) -> int:
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return cli.main(list(argv))
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("documented"))


# --------------------------------------------------------------------------- checks
def _with(argv: list[str], option: str, value: str | None = None) -> list[str]:
    """``argv`` with ``option`` (and its value) set: replaced when there, else added."""
    if option not in argv:
        return [*argv, option] + ([value] if value is not None else [])
    i = argv.index(option)
    return [*argv[: i + 1], value, *argv[i + 2 :]] if value is not None else argv


def _capped(argv: list[str], option: str, cap: int) -> list[str]:
    """``argv`` with the values of ``option`` (when there) cut to ``cap``: a count is
    lowered to it, a list of values is cut to its first ``cap``."""
    if option not in argv:
        return argv
    i = j = argv.index(option) + 1
    while j < len(argv) and not argv[j].startswith("--"):
        j += 1
    values = argv[i:j]
    kept = values[:cap] if len(values) > 1 else [str(min(int(values[0]), cap))]
    return [*argv[:i], *kept, *argv[j:]]


def _leaves(tree: dict, prefix: str = ""):
    for k, v in tree.items():
        if isinstance(v, dict):
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _lookup(tree: dict, dotted: str):
    for part in dotted.split("."):
        tree = tree[part]
    return tree


def _expected_values(args: argparse.Namespace, cwd: Path) -> dict:
    expected = dict(_leaves(load_yaml(cwd / args.config))) if args.config else {}
    expected.update(_leaves(parse_overrides(args.overrides)))
    return expected


def check_train(argv: list[str], ws: Workspace, capsys) -> None:
    args = cli._build_parser().parse_args(argv)
    if args.help_config:
        assert _main(argv, ws.root) == 0
        out = capsys.readouterr().out
        assert re.search(r"^  steps ", out, re.M), out  # every config lists its budget
        return
    if args.resume:
        run = ws.root / "resumed" / Path(args.resume).name
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(args.resume, run)
        start = _checkpoint_step(run)
        argv = _with(argv, "--resume", str(run))
        if args.checkpoint:  # the documented name has the form of the run's own
            _check_checkpoint_name(run, args.checkpoint)
            argv = _with(argv, "--checkpoint", _latest_name(run))
        argv = _with(_with(argv, "--steps", str(start + int(STEPS))), "--no-progress")
        assert _main(argv, ws.root) == 0
        assert _checkpoint_step(run) > start
        return
    expected = _expected_values(args, ws.root)
    if args.env.startswith("pilot/Atari-"):  # resolve only: no Atari update in unit tests
        config = _resolve(args, ws.root)
    else:
        out_dir = ws.root / "runs"
        before = _listing(out_dir)
        argv = _with(_with(argv, "--steps", STEPS), "--no-progress")
        argv = _with(argv, "--runs-dir", str(out_dir))
        assert _main(argv, ws.root) == 0
        (made,) = _listing(out_dir) - before
        config = load_yaml(made / "config.yaml")
        assert (config["algo"], config["env_id"]) == (args.algo, args.env)
    for key, value in expected.items():
        assert _lookup(config, key) == value, key


def _resolve(args: argparse.Namespace, cwd: Path) -> dict:
    """What `pilot train` resolves before training: algorithm, env id, config and env options."""
    from pilot.agents import build_config
    from pilot.envs import check_id, make_env

    check_id(args.env)
    file_values = load_yaml(cwd / args.config) if args.config else {}
    config = build_config(args.algo, args.env, file_values, parse_overrides(args.overrides))
    make_env(args.env, **config.env).close()  # the env's own options are checked here
    return to_dict(config)


def _check_checkpoint_name(run: Path, example: str) -> None:
    """A documented checkpoint name has the form of the names a run writes."""
    names = [p.stem for p in (run / "checkpoints").glob("step_*.pt")]
    assert names and all(re.sub(r"\d", "0", n) == re.sub(r"\d", "0", example) for n in names)


def _latest_name(run: Path) -> str:
    return json.loads((run / "checkpoints" / "latest.json").read_text())["checkpoint"]


def _checkpoint_step(run: Path) -> int:
    return int(_latest_name(run).rsplit("_", 1)[1])


def check_watch_or_eval(argv: list[str], ws: Workspace) -> None:
    """Short episodes; what the command writes (a video, an eval summary) must appear."""
    run = Path(argv[1])
    if argv[0] == "eval":
        folder, pattern, steps = run / "eval", "*/summary.json", "20"
    else:
        suffix = ".gif" if _value(argv, "--format") in ("gif", "both") else ".mp4"
        folder, pattern, steps = run / "videos", f"*{suffix}", "5"
    before = set(folder.glob(pattern))
    argv = _with(argv, "--max-steps", steps)
    argv = _capped(_capped(argv, "--episodes", 2), "--seeds", 2)
    argv = _with(argv, "--num-cpus", "2") if "--backend" in argv else argv
    assert _main(argv, ws.root) == 0
    assert set(folder.glob(pattern)) - before, f"no new {pattern} in {folder}"


def _perception_run(ws: Workspace, data: str) -> Path:
    """A tiny fusion-network run (2 steps) on the dataset folder ``data``: what
    ``RUN_DIR`` stands for in the perception examples."""
    key = ("perception", data)
    if key not in ws.runs:
        out = ws.fixtures / "perception"
        before = _listing(out)
        argv = ["perception", "train", data, "--steps", "2", "--runs-dir", str(out)]
        assert _main([*argv, "--no-progress", "--threads", "1"], ws.root) == 0, argv
        (ws.runs[key],) = _listing(out) - before
    return ws.runs[key]


def _ablation_data(ws: Workspace, argv: list[str]) -> Path:
    """A dataset of 2-frame shards with the training split and every evaluation split an
    ablate example names (the last on Obstacles, the others on LaneKeep)."""
    from pilot.perception.dataset import collect
    from pilot.perception.episodes import CollectConfig

    splits = [_value(argv, "--train-split") or "train",
              *(_value(argv, "--eval-splits") or "val,heldout").split(",")]  # fmt: skip
    root = ws.root / "data" / f"ablate-{'-'.join(splits)}"
    if not root.exists():
        cfg = CollectConfig(frames=2)
        for seed, split in enumerate(splits):
            scenario = "Obstacles" if seed == len(splits) - 1 else "LaneKeep"
            collect(root, split, [scenario], [seed], cfg)
    return root


def check_perception(argv: list[str], ws: Workspace, where: str, capsys) -> None:
    """Collections keep their first two seeds; `show` draws an early frame; training runs
    2 steps (a resume 1 more), `RUN_DIR` is a tiny run; what each writes or prints must
    appear."""
    action = argv[1]
    if action == "collect":
        if "--help" in where:  # option examples: a dataset folder of their own each
            argv = [
                *argv[:2],
                f"data/example-{len(list(ws.root.glob('data/example-*')))}",
                *argv[3:],
            ]
        seeds = _value(argv, "--seeds")
        first = int(re.match(r"\d+", seeds)[0])
        argv = _with(argv, "--seeds", f"{first}-{first + 1}" if "-" in seeds else str(first))
    elif action == "show":
        argv = _with(argv, "--frame", "1")
    elif action == "train" and "--resume" in argv:
        source = _perception_run(ws, argv[2])
        run = ws.root / "resumed" / source.name
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(source, run)
        argv = _with(argv, "--resume", str(run))
        argv = _with(argv, "--steps", str(_checkpoint_step(run) + 1))
    elif action == "train":
        argv = _with(_with(argv, "--steps", "2"), "--runs-dir", str(ws.root / "runs"))
    elif action == "eval":
        argv = [*argv[:2], str(_perception_run(ws, argv[3])), *argv[3:]]
    elif action == "watch":  # one frame of a tiny run
        argv = [*argv[:2], str(_perception_run(ws, argv[3])), *argv[3:]]
        argv = _with(_with(argv, "--frames", "1"), "--threads", "1")
    elif action == "ablate":  # its own tiny dataset with every split it names, 2 steps
        argv = [*argv[:2], str(_ablation_data(ws, argv)), *argv[3:]]
        argv = _with(_with(argv, "--steps", "2"), "--out", str(ws.root / "ablation"))
        argv = [*_with(argv, "--no-progress"), "--set", "model.channels=8"]
    if action in ("train", "eval", "ablate"):
        argv = _with(argv, "--threads", "1")
        argv = _with(argv, "--no-progress") if action == "train" else argv
    made = _listing(ws.root / "runs")
    rc = _main(argv, ws.root)
    out, err = capsys.readouterr()
    assert rc == 0, err
    root = ws.root / argv[2]
    if action == "collect":
        manifest = json.loads((root / "manifest.json").read_text())
        assert _value(argv, "--split") in {s["split"] for s in manifest["shards"]}
    elif action == "show":
        assert (ws.root / _value(argv, "--out")).stat().st_size > 0
    elif action == "train" and "--resume" in argv:
        assert _checkpoint_step(Path(_value(argv, "--resume"))) == int(_value(argv, "--steps"))
    elif action == "train":
        (run,) = _listing(ws.root / "runs") - made
        assert _checkpoint_step(run) == 2
    elif action == "ablate":
        results = json.loads((ws.root / "ablation" / "ablation.json").read_text())
        assert list(results["scores"]) == ["camera", "lidar", "camera+lidar"], out
    elif action == "eval":
        assert "mIoU" in out and list((root / "eval").glob("*/summary.json")), out
    elif action == "watch":
        videos = re.findall(r"^video: (.+) \(1 frames", out, re.M)
        assert videos and all((ws.root / v).stat().st_size > 0 for v in videos), out
        assert "--png" not in argv or (ws.root / _value(argv, "--png")).stat().st_size > 0
    else:
        assert "mIoU" in out, out


def _value(argv: list[str], option: str) -> str | None:
    return argv[argv.index(option) + 1] if option in argv else None


def _small_spec(argv: list[str], ws: Workspace) -> list[str]:
    """``leaderboard run SPEC``'s spec at a tiny budget (first seed, one episode of at most
    20 steps, 64 training steps), under the same name so its default folder is the same."""
    import yaml

    from pilot.eval.leaderboards.spec import load_spec

    source = Path(
        load_spec(str(ws.root / argv[2]) if (ws.root / argv[2]).exists() else argv[2]).source
    )
    data = yaml.safe_load(source.read_text())
    data.update(seeds=[load_spec(source).seeds[0]], episodes=1, max_steps=20)
    for track in data["tracks"]:
        track["max_steps"] = 20
        for key, value in (track.get("set") or {}).items():  # maps beside the original
            if key.endswith("_file") and (source.parent / value).is_file():
                track["set"][key] = str(source.parent / value)
    for entry in data["entries"]:
        if "train" in entry:
            entry["train"]["steps"] = 64
    small = ws.root / "small-specs" / source.name
    small.parent.mkdir(exist_ok=True)
    small.write_text(yaml.safe_dump(data))
    return [*argv[:2], str(small), *argv[3:]]


def check_leaderboard(argv: list[str], ws: Workspace) -> None:
    if argv[1] == "run":
        argv = _small_spec(argv, ws)
        if "--backend" in argv:
            argv = _with(argv, "--num-cpus", "2")
        assert _main(_with(argv, "--no-progress"), ws.root) == 0
        from pilot.eval.leaderboards.spec import load_spec

        name = load_spec(argv[2]).name
        out = ws.root / (_value(argv, "--out") or f"runs/leaderboards/{name}")
    else:
        assert _main(argv, ws.root) == 0
        out = ws.root / argv[2]
    assert (out / "report" / "report.html").is_file() and list((out / "records").rglob("*.json"))


def _ray_running() -> bool:
    """Whether a Ray cluster runs on this machine (what ``--address auto`` joins: the one
    ``ray start`` recorded, or any running Ray's GCS process)."""
    from ray._private.services import find_gcs_addresses

    return bool(find_gcs_addresses())


def check_sweep(argv: list[str], ws: Workspace, where: str, capsys) -> None:
    """A sweep keeps its arguments at a tiny budget: 64 steps, the first seed, 2 CPUs.
    Joining a cluster (``--address``) where none runs is the one-line error it promises.
    Sweeps given by flags alone share a default folder; each gets its own here."""
    if "--algo" in argv:
        argv = _with(argv, "--steps", STEPS)
        if "--out" not in argv and "--name" not in argv:
            argv = _with(argv, "--name", re.sub(r"\W+", "-", where).strip("-"))
    argv = _with(argv, "--seeds", "0") if "--seeds" in argv else argv
    if "--address" in argv:  # in a folder of its own: the README's sweep.yaml ran before
        if _ray_running():
            pytest.skip("a Ray cluster runs on this machine: `--address auto` would join it")
        assert _main(_with(argv, "--out", "runs/sweeps/on-a-cluster"), ws.root) == 2
        assert "cannot start or join the Ray cluster at" in capsys.readouterr().err
        return
    assert _main([*argv, "--num-cpus", "2", "--no-progress"], ws.root) == 0
    out = capsys.readouterr().out
    assert "best" in out.lower(), out


def check(doc: Doc, ws: Workspace, capsys) -> None:
    argv = ws.substitute(doc)
    capsys.readouterr()
    command = argv[0] if argv else ""
    if doc.check == "checkpoint-name":
        return _check_checkpoint_name(Path(argv[2]), argv[-1])
    if command == "train":
        return check_train(argv, ws, capsys)
    if command in ("watch", "eval"):
        return check_watch_or_eval(argv, ws)
    if command == "perception":
        return check_perception(argv, ws, doc.where, capsys)
    if command == "leaderboard":
        return check_leaderboard(argv, ws)
    if command == "sweep":
        return check_sweep(argv, ws, doc.where, capsys)
    rc = _main(argv, ws.root)
    out = capsys.readouterr().out
    assert rc == 0
    if command == "list":
        assert "CartPole-v1" in out and "pilot/Probe-Identity-v0" in out and "ppo" in out
    elif command == "bench":
        assert ("usage: pilot bench " in out) if "--help" in argv else ("run one:" in out)
    elif command == "plan" and "--generate" in argv:
        out_map = ws.root / _value(argv, "--out")
        assert out_map.is_file() and Path(f"{out_map}.scen").is_file()
    elif command == "plan":
        assert "success rate      100.0%" in out
    else:
        pytest.fail(f"no way to check `pilot {' '.join(argv)}`: teach this test")


@pytest.mark.parametrize("doc", [pytest.param(d, id=d.id) for d in DOCS])
def test_documented_command_runs(doc, workspace, capsys):
    check(doc, workspace, capsys)


# ----------------------------------------------------------- the CLI's own mistakes
@pytest.mark.parametrize(
    "argv, words",
    [
        ([], "missing COMMAND, one of list, train, watch, eval, plan, perception, sweep"),
        (["trian"], "invalid choice: 'trian'"),
        (["list", "extra"], "unrecognized arguments: extra"),
        (["bench", "nosuch"], "unknown benchmark 'nosuch'; choose from "),
        (["bench", "spin"], "unknown benchmark 'spin' (did you mean: spine"),
        (["bench", "planning", "--maps", "random"], "invalid choice: 'random'"),
        (["plan", "--map", "."], "plan needs --map FILE.map and --scen FILE.scen"),
        (["plan", "--map", ".", "--scen", "x.scen"], "map file . is a directory"),
    ],
)
def test_mistakes_end_in_one_line_and_exit_2(argv, words, capsys):
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("pilot: error: ") and captured.err.count("\n") == 1
    assert words in captured.err, captured.err
    assert captured.out == ""


def test_unknown_command_names_the_close_one(capsys):
    assert cli.main(["trian"]) == 2
    assert "(did you mean: train?)" in capsys.readouterr().err


def test_bench_lists_every_script_with_its_summary(capsys):
    assert cli.main(["bench"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = lines[:-1]
    names = [ln.split()[0] for ln in rows]
    assert "planning" in names and "spine" in names
    starts = {ln.index(ln.split()[1]) for ln in rows}
    assert len(starts) == 1, "the summaries line up in one column"
    assert not any("``" in ln for ln in rows), "reST markup stays out of the terminal"


def test_bench_without_a_peer_package_is_one_line(monkeypatch, capsys):
    import runpy

    def missing(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'pathfinding'", name="pathfinding")

    monkeypatch.setattr(runpy, "run_module", missing)
    assert cli.main(["bench", "planning"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "needs the package 'pathfinding'" in err and 'pip install -e ".[bench]"' in err


def test_bench_restores_argparse_after_the_script(capsys):
    cli.main(["bench", "planning", "--maps", "random"])
    with pytest.raises(SystemExit):  # plain argparse behaves as before, outside pilot
        argparse.ArgumentParser().parse_args(["--nope"])
    assert "unrecognized arguments" in capsys.readouterr().err


def test_interrupt_is_one_line_not_a_traceback(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "list", interrupted)
    assert cli.main(["list"]) == 130
    assert capsys.readouterr().err == "pilot: interrupted\n"


def test_closed_pipe_stops_quietly():
    """`pilot list | head -1`: the reader is gone before pilot writes."""
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pilot", "list"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write)
    assert done.returncode == 141
    assert done.stderr == ""
