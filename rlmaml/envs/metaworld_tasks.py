"""Meta-World's meta-RL benchmarks as rlmaml task families: ML1 (one manipulation task, 50 train and 50 held-out
goals), ML10 (10 train classes, 5 held-out classes) and ML45 (45 train, 5 held-out), on Farama's ``metaworld`` 3.x.

Env ids (one :class:`~rlmaml.envs.registry.TaskFamily` record each, registered by :mod:`rlmaml.envs`)::

    metaworld/ML1-<task>      one of the 50 task names of :data:`ML1_TASKS`, e.g. metaworld/ML1-reach-v3
    metaworld/ML10            the ML10 benchmark
    metaworld/ML45            the ML45 benchmark

A task is a JSON-able dict naming one of the benchmark's tasks: ``{"class": "reach-v3", "index": 17, "split":
"train"}`` is the 18th of the 50 ``reach-v3`` tasks of the benchmark's ``train_tasks`` (``"test"``: of its
``test_tasks``). ``sample_tasks`` draws from the train split; evaluation draws the held-out tasks from the test
split through the record's ``held_out`` (:func:`held_out_tasks`). The envs are built from the benchmark objects
``metaworld.ML1(task, seed)``, ``ML10(seed)``, ``ML45(seed)`` (``benchmark_seed``, default 0, fixes the goals; the
same for every run) and ``env.set_task(task)``, not from ``gymnasium.make_vec("Meta-World/ML1-train")``, which in
metaworld 3.1.1 gives the test goals. metaworld is imported only here, on first use; it pins ``mujoco==3.3.0``
but runs on newer mujoco once its mocap welds are reset with the 12 numbers of ``eq_data`` rows since mujoco
3.17 (:func:`import_metaworld` applies the fix). ``docs/metaworld.md`` has the install and its measured cost.

The records of ML10 and of ML1 for its 15 classes have a native batched engine,
:class:`rlmaml.envs.metaworld_native.MetaWorldNativeEnv` (the classes: :mod:`rlmaml.envs.metaworld_classes`); the
others step through ``gymnasium.vector``.
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from rlmaml.errors import UserError

from .registry import RenderHints, TaskFamily
from .task_env import TaskEnvMixin

INSTALL_COMMAND = "pip install -e '.[metaworld]' && pip install --no-deps metaworld==3.1.1"
HORIZON = 500  # metaworld's max_path_length: truncated at 500
TASKS_PER_CLASS = 50  # metaworld's _N_GOALS: goals per class and split
SPLITS = ("train", "test")
RAND_VEC_DIM = 6  # the longest per-task random vector (object and goal positions) of the 50 classes
WELD_DATA = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 5.0)  # metaworld's weld row (mujoco < 3.17: 11)

#: The 50 task names of metaworld 3.1.1 (``metaworld.env_dict.ALL_V3_ENVIRONMENTS``; a test checks they agree).
ML1_TASKS = (
    "assembly-v3", "basketball-v3", "bin-picking-v3", "box-close-v3", "button-press-topdown-v3",
    "button-press-topdown-wall-v3", "button-press-v3", "button-press-wall-v3", "coffee-button-v3", "coffee-pull-v3",
    "coffee-push-v3", "dial-turn-v3", "disassemble-v3", "door-close-v3", "door-lock-v3", "door-open-v3",
    "door-unlock-v3", "hand-insert-v3", "drawer-close-v3", "drawer-open-v3", "faucet-open-v3", "faucet-close-v3",
    "hammer-v3", "handle-press-side-v3", "handle-press-v3", "handle-pull-side-v3", "handle-pull-v3",
    "lever-pull-v3", "pick-place-wall-v3", "pick-out-of-hole-v3", "pick-place-v3", "plate-slide-v3",
    "plate-slide-side-v3", "plate-slide-back-v3", "plate-slide-back-side-v3", "peg-insert-side-v3",
    "peg-unplug-side-v3", "soccer-v3", "stick-push-v3", "stick-pull-v3", "push-v3", "push-wall-v3",
    "push-back-v3", "reach-v3", "reach-wall-v3", "shelf-place-v3", "sweep-into-v3", "sweep-v3", "window-open-v3",
    "window-close-v3",
)

#: ML10's classes (``metaworld.env_dict.ML10_V3``; a test checks they agree), known without importing metaworld
ML10_CLASSES = {
    "train": ("reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-close-v3", "button-press-topdown-v3",
              "peg-insert-side-v3", "window-open-v3", "sweep-v3", "basketball-v3"),
    "test": ("drawer-open-v3", "door-close-v3", "shelf-place-v3", "sweep-into-v3", "lever-pull-v3"),
}


# ----------------------------------------------------------------------------- metaworld, imported on first use
def _reset_mocap_welds(self) -> None:
    """metaworld's ``SawyerMocapBase.reset_mocap_welds`` for any ``eq_data`` row length: its 11 numbers, padded
    with zeros (mujoco >= 3.17 has 12; a zero ``eq_data[11]`` keeps the weld's relative pose as set)."""
    import mujoco

    model = self.model
    if model.nmocap > 0 and model.eq_data is not None:
        row = np.zeros(model.eq_data.shape[1])
        row[:len(WELD_DATA)] = WELD_DATA
        for i in range(model.eq_data.shape[0]):
            if model.eq_type[i] == mujoco.mjtEq.mjEQ_WELD:
                model.eq_data[i] = row


@functools.cache
def import_metaworld():
    """The ``metaworld`` module with the weld fix applied, or a one-line UserError naming the install command."""
    try:
        import metaworld
        from metaworld.sawyer_xyz_env import SawyerMocapBase
    except ImportError as exc:
        raise UserError(f"the Meta-World families need the metaworld package ({exc}); install it with: "
                        f"{INSTALL_COMMAND}") from None
    SawyerMocapBase.reset_mocap_welds = _reset_mocap_welds
    return metaworld


@dataclass(frozen=True)
class MetaWorldBenchmark:
    """One of metaworld's meta-learning benchmarks: ``name`` ``"ML1"`` (with ``task``), ``"ML10"`` or ``"ML45"``."""

    name: str
    task: str | None = None

    def __post_init__(self) -> None:
        if self.name not in BENCHMARKS:
            raise UserError(f"Meta-World benchmark must be one of {list(BENCHMARKS)}, got {self.name!r}")
        if (self.name == "ML1") != (self.task is not None):
            raise UserError(f"Meta-World benchmark {self.name}: a task name goes with ML1 only, got {self.task!r}")
        if self.task is not None and self.task not in ML1_TASKS:
            raise UserError(f"ML1 task must be one of the 50 Meta-World task names ({', '.join(ML1_TASKS)}), "
                            f"got {self.task!r}")

    @property
    def env_id(self) -> str:
        return f"metaworld/ML1-{self.task}" if self.task else f"metaworld/{self.name}"

    def classes(self, split: str) -> tuple[str, ...]:
        """The task classes of ``split`` (``"train"`` or ``"test"``), in the benchmark's order."""
        if split not in SPLITS:
            raise UserError(f"Meta-World split must be one of {list(SPLITS)}, got {split!r}")
        if self.task is not None:
            return (self.task,)
        return tuple(getattr(import_metaworld().env_dict, BENCHMARKS[self.name])[split])

    def all_classes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.classes("train"), *self.classes("test"))))

    def load(self, seed: int):
        """The metaworld benchmark object built with ``seed`` (once per process: ML45 takes about 20 s)."""
        return _load_benchmark(self, int(seed))


BENCHMARKS = {"ML1": None, "ML10": "ML10_V3", "ML45": "ML45_V3"}  # name -> metaworld.env_dict split table


@functools.cache
def _load_benchmark(benchmark: MetaWorldBenchmark, seed: int):
    metaworld = import_metaworld()
    if benchmark.task is not None:
        return metaworld.ML1(benchmark.task, seed=seed)
    return getattr(metaworld, benchmark.name)(seed=seed)


@functools.cache
def _split_tasks(benchmark: MetaWorldBenchmark, seed: int, split: str) -> dict[str, list]:
    """{class: its 50 metaworld ``Task`` objects of ``split``, in the benchmark's order}."""
    loaded = benchmark.load(seed)
    out: dict[str, list] = {c: [] for c in benchmark.classes(split)}
    for task in loaded.train_tasks if split == "train" else loaded.test_tasks:
        out[task.env_name].append(task)
    return out


def draw_tasks(benchmark: MetaWorldBenchmark, split: str, n: int, rng: np.random.Generator) -> list[dict]:
    """``n`` task dicts of ``split``, balanced over its classes (each class ⌊n/k⌋ or ⌈n/k⌉ times, in shuffled
    rounds) and, within a class, distinct goals until its 50 are used up: ML1's 50 held-out goals are exactly
    ``draw_tasks(ml1, "test", 50, rng)``."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise UserError(f"number of tasks must be a non-negative integer, got {n!r}")
    classes = benchmark.classes(split)
    rounds = -(-int(n) // len(classes))
    order = np.concatenate([rng.permutation(len(classes)) for _ in range(rounds)])[:n] if n else np.zeros(0, int)
    counts = np.bincount(order, minlength=len(classes))
    goals = {c: iter(np.concatenate([rng.permutation(TASKS_PER_CLASS)
                                     for _ in range(-(-int(counts[c]) // TASKS_PER_CLASS))] or [np.zeros(0, int)]))
             for c in range(len(classes))}
    return [{"class": classes[c], "index": int(next(goals[c])), "split": split} for c in order]


def held_out_tasks(benchmark: MetaWorldBenchmark, n: int, seed: int) -> list[dict]:
    """The meta-test tasks for evaluation: ``n`` tasks of the benchmark's test split drawn from ``seed`` only
    (ML1: its 50 held-out goals; ML10, ML45: the 5 held-out classes)."""
    return draw_tasks(benchmark, "test", n, np.random.default_rng(seed))


# ----------------------------------------------------------------------------- the env
class MetaWorldEnv(TaskEnvMixin, gym.Env):
    """A Meta-World benchmark (ML1, ML10 or ML45) as one env with rlmaml's task protocol: the task names the
    benchmark task (class and goal) that the env runs, switching the underlying metaworld env on a new class.

    ## Task
    ``{"class": name, "index": i, "split": "train" | "test"}``: the ``i``-th (0..49) task of class ``name`` in the
    benchmark's ``train_tasks`` or ``test_tasks``. ``sample_tasks(n)`` draws from the train split, balanced over
    its classes; :func:`held_out_tasks` draws evaluation tasks from the test split. ML1's train and test goals are
    disjoint (metaworld draws them with seeds ``s`` and ``s + 1``); ML10's and ML45's test classes are disjoint
    from their train classes.

    ## Action Space
    ``Box(-1, 1, (4,), float32)``: the hand's displacement in x, y, z (1 = 1 cm through the mocap weld) and the
    gripper's effort.

    ## Observation Space
    ``Box((39,), float64)``: hand position, gripper opening and up to two objects' positions and quaternions (18
    numbers), the same 18 of the previous step, and the goal position, which is zero in the meta-learning
    benchmarks (the goal is not observed).

    ## Rewards
    metaworld's v2 reward of the task class, between 0 and 10 per step. ``info["success"]`` is 1.0 on each step
    where the task is solved, else 0.0 (rlmaml counts an episode as a success if any step is one); the other
    entries of metaworld's ``info`` (``near_object``, ``grasp_success``, ...) come along; with ``record_state``,
    also the joint state after the step, ``info["qpos"]`` and ``info["qvel"]`` (for videos, :mod:`rlmaml.viz.video`).

    ## Starting State
    Fixed by the task (metaworld freezes each task's object and goal positions); ``reset(seed=...)`` seeds only
    the env's task generator.

    ## Episode End
    Never terminates; truncated at 500 steps (metaworld's ``max_path_length``) or at ``max_episode_steps``.

    ## Arguments
    ``benchmark``: ``"ML1"``, ``"ML10"`` or ``"ML45"``; ``task``: ML1's task name; ``benchmark_seed``: the seed
    of the metaworld benchmark object (its goals); ``observe_goal``: put the goal position in the last 3 numbers
    (metaworld's multi-task observation, for the scripted expert policies; never in the meta-RL benchmarks);
    ``render_mode``: metaworld's (``"rgb_array"``); ``record_state``: put ``qpos``/``qvel`` in every step's info.
    """

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array", "depth_array"], "render_fps": 80}
    task_keys = ("class", "index", "split")

    def __init__(self, benchmark: str = "ML1", task: str | None = None, *, benchmark_seed: int = 0,
                 observe_goal: bool = False, render_mode: str | None = None, record_state: bool = False) -> None:
        self.benchmark = MetaWorldBenchmark(benchmark, task)
        self.record_state = bool(record_state)
        if isinstance(benchmark_seed, bool) or not isinstance(benchmark_seed, (int, np.integer)):
            raise UserError(f"benchmark_seed must be an integer, got {benchmark_seed!r}")
        self.benchmark_seed = int(benchmark_seed)
        self.observe_goal = bool(observe_goal)
        self.render_mode = render_mode
        self._loaded = self.benchmark.load(self.benchmark_seed)
        self._classes = {**self._loaded.train_classes, **self._loaded.test_classes}
        self._class_index = {c: i for i, c in enumerate(self.benchmark.all_classes())}
        self._inner = None
        self._inner_class: str | None = None
        self._inner_task: dict | None = None
        self._build_inner(self.benchmark.classes("train")[0])
        space = self._inner.observation_space
        if self.observe_goal:  # the goal's bounds differ between classes
            low, high = space.low.copy(), space.high.copy()
            low[-3:], high[-3:] = -np.inf, np.inf
            space = gym.spaces.Box(low, high, dtype=space.dtype)
        self.observation_space = space
        self.action_space = self._inner.action_space

    def _build_inner(self, name: str) -> None:
        if self._inner is not None:
            self._inner.close()
        self._inner = self._classes[name](render_mode=self.render_mode)
        self._inner_class, self._inner_task = name, None

    # ---- the task protocol
    def sample_tasks_from(self, rng: np.random.Generator, n: int) -> list[dict]:
        return draw_tasks(self.benchmark, "train", n, rng)

    def validate_task(self, task) -> dict:
        task = super().validate_task(task)
        split = task["split"]
        if split not in SPLITS:
            raise UserError(f"Meta-World task split must be one of {list(SPLITS)}, got {split!r}")
        if task["class"] not in self.benchmark.classes(split):
            raise UserError(f"Meta-World task class {task['class']!r} is not in {self.benchmark.env_id}'s {split} "
                            f"classes {list(self.benchmark.classes(split))}")
        index = task["index"]
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < TASKS_PER_CLASS:
            raise UserError(f"Meta-World task index must be an integer in [0, {TASKS_PER_CLASS}), got {index!r}")
        return {"class": task["class"], "index": int(index), "split": split}

    def metaworld_task(self, task: dict):
        """The metaworld ``Task`` object that ``task`` names."""
        task = self.validate_task(task)
        return _split_tasks(self.benchmark, self.benchmark_seed, task["split"])[task["class"]][task["index"]]

    def task_vector(self, task: dict) -> np.ndarray:
        """The class as a one-hot over the benchmark's train and test classes, then the task's random vector
        (metaworld's ``rand_vec``: object and goal positions, zero-padded to 6 numbers)."""
        rand_vec = np.asarray(pickle.loads(self.metaworld_task(task).data)["rand_vec"], dtype=np.float64)
        out = np.zeros(len(self._class_index) + RAND_VEC_DIM)
        out[self._class_index[task["class"]]] = 1.0
        out[len(self._class_index):len(self._class_index) + rand_vec.size] = rand_vec
        return out

    # ---- Gymnasium
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._select_task_on_reset(options)
        task = self._task
        if task["class"] != self._inner_class:
            self._build_inner(task["class"])
        if task != self._inner_task:
            self._set_observability(partially_observable=True)  # as the ML tasks say
            self._inner.set_task(self.metaworld_task(task))
            self._inner_task = dict(task)
            if self.observe_goal:
                self._set_observability(partially_observable=False)
        return self._inner.reset()

    def _set_observability(self, partially_observable: bool) -> None:
        self._inner._partially_observable = partially_observable
        self._inner.__dict__.pop("sawyer_observation_space", None)  # a cached property of the observability

    def step(self, action):
        obs, reward, terminated, truncated, info = self._inner.step(np.asarray(action, dtype=np.float32))
        info = {k: float(v) for k, v in info.items() if np.isscalar(v)}
        if self.record_state:
            info["qpos"], info["qvel"] = self._inner.data.qpos.copy(), self._inner.data.qvel.copy()
        return obs, float(reward), bool(terminated), bool(truncated), info

    def render(self):
        return self._inner.render()

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()


# ----------------------------------------------------------------------------- videos
@functools.cache
def _scene_env(name: str, task: str | None) -> MetaWorldEnv:
    return MetaWorldEnv(name, task)


def replay_scene(benchmark: MetaWorldBenchmark, env_id: str, task: dict) -> tuple[Any, list[np.ndarray]]:
    """The model a task's recorded states replay in (metaworld's model after the task's reset, which moves the
    objects' bodies for many classes) and its goal position ``_target_pos`` to mark (:class:`RenderHints`)."""
    import copy

    env = _scene_env(benchmark.name, benchmark.task)
    env.reset(options={"task": task})
    return copy.deepcopy(env._inner.model), [np.array(env._inner._target_pos, dtype=np.float64)]


GOAL_MARK = 0.05  # the goal's sphere in videos: reach-v3's success radius (metres)
#: a fixed camera in front of the table, looking at its middle
CAMERA = {"lookat": (0.0, 0.65, 0.15), "distance": 1.45, "elevation": -25.0, "azimuth": 135.0}


# ----------------------------------------------------------------------------- the records


def _record(benchmark: MetaWorldBenchmark, description: str) -> TaskFamily:
    """The record of a benchmark (the native engines of the classes of ``NATIVE_CLASSES`` are added by
    :func:`rlmaml.envs.metaworld_native.with_native_engines` when rlmaml.envs registers them)."""
    render = RenderHints("mujoco", camera=CAMERA, scene=functools.partial(replay_scene, benchmark),
                         marker_radius=GOAL_MARK)
    return TaskFamily(benchmark.env_id, functools.partial(MetaWorldEnv, benchmark.name, benchmark.task), HORIZON,
                      description, None, render=render, held_out=functools.partial(held_out_tasks, benchmark))


def _families(tasks: Sequence[str]) -> tuple[TaskFamily, ...]:
    ml1 = tuple(_record(MetaWorldBenchmark("ML1", t), f"Meta-World ML1 {t}: 50 train goals, 50 held-out goals, "
                        f"horizon {HORIZON}") for t in tasks)
    return (*ml1,
            _record(MetaWorldBenchmark("ML10"), f"Meta-World ML10: 10 train classes, 5 held-out classes, 50 goals "
                    f"each, horizon {HORIZON}"),
            _record(MetaWorldBenchmark("ML45"), f"Meta-World ML45: 45 train classes, 5 held-out classes, 50 goals "
                    f"each, horizon {HORIZON}"))


METAWORLD_FAMILIES = _families(ML1_TASKS)

__all__ = ["INSTALL_COMMAND", "METAWORLD_FAMILIES", "ML1_TASKS", "ML10_CLASSES", "MetaWorldBenchmark",
           "MetaWorldEnv", "draw_tasks", "held_out_tasks", "import_metaworld"]
