"""The seam of the native Meta-World engine (:mod:`rlmaml.envs.metaworld_native`): the :class:`NativeClass`
protocol a task class implements, the registry :data:`NATIVE_CLASSES` it joins with :func:`native_class`, and
metaworld's reward utilities (``metaworld.utils.reward_utils``, ``SawyerXYZEnv._gripper_caging_reward``) in
vectorised form, one value per copy. The classes themselves are in :mod:`rlmaml.envs.metaworld_classes`;
``docs/extending/metaworld-class.md`` adds one."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .metaworld_tasks import ML10_CLASSES

if TYPE_CHECKING:
    from .metaworld_native import Copies

CAGING_GRIP_THRESHOLD = 0.97  # SawyerXYZEnv._gripper_caging_reward: caging above which gripping counts
INFO_KEYS = ("success", "near_object", "grasp_success", "grasp_reward", "in_place_reward", "obj_to_target",
             "unscaled_reward")


# ----------------------------------------------------------------------------- vectorised reward_utils
def norm(x: np.ndarray) -> np.ndarray:
    """``np.linalg.norm`` of each row: ``sqrt(x · x)`` through matmul's dot kernel, the one ``np.linalg.norm`` of a
    single vector uses (the reductions of ``np.linalg.norm(x, axis=-1)`` may round differently)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    return np.sqrt(np.matmul(x[..., None, :], x[..., :, None])[..., 0, 0])


def tolerance(x: np.ndarray, lower: float, upper: float, margin, sigmoid: str = "gaussian",
              value_at_margin: float = 0.1) -> np.ndarray:
    """``reward_utils.tolerance(x, bounds=(lower, upper), margin, sigmoid, value_at_margin)`` for arrays of ``x``
    and ``margin`` (one per copy), in the same operations:

        1                                   lower ≤ x ≤ upper
        s(d / margin),  d = distance to the nearest bound, s the sigmoid with s(1) = value_at_margin
        0                                   outside, when margin = 0
    """
    from metaworld.utils import reward_utils

    x = np.asarray(x, dtype=np.float64)
    margin = np.broadcast_to(np.asarray(margin, dtype=np.float64), x.shape)
    in_bounds = np.logical_and(lower <= x, x <= upper)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d = np.where(x < lower, lower - x, x - upper) / margin
        value = np.where(in_bounds, 1.0, reward_utils._sigmoids(d, value_at_margin, sigmoid))
    return np.where(margin == 0, np.where(in_bounds, 1.0, 0.0), value)


def hamacher(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``reward_utils.hamacher_product`` element-wise: ab / (a + b − ab), 0 where the denominator is 0."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    denominator = a + b - (a * b)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, (a * b) / denominator, 0.0)


def gripper_effort(action: np.ndarray, desired: float = 1.0) -> np.ndarray:
    """``min(max(0, action[-1]), desired) / desired`` of each copy (float64)."""
    return np.minimum(np.maximum(0.0, action[:, -1].astype(np.float64)), desired) / desired


def object_caging(c: Copies, obj_pos: np.ndarray, obj_radius: float, pad_success_thresh: float,
                  xz_thresh: float) -> np.ndarray:
    """The caging term of ``SawyerXYZEnv._gripper_caging_reward`` of every copy (reads ``obj_init`` and
    ``init_tcp``): hamacher(caging of the object between the pads in y, caging by the hand in xz)."""
    obj_init, init_tcp = c.const["obj_init"], c.const["init_tcp"]
    pad_y_lr = np.stack([c.body("leftpad")[:, 1], c.body("rightpad")[:, 1]], axis=1)
    pad_to_obj_lr = np.abs(pad_y_lr - obj_pos[:, 1:2])
    pad_to_objinit_lr = np.abs(pad_y_lr - obj_init[:, 1:2])
    caging_lr_margin = np.abs(pad_to_objinit_lr - pad_success_thresh)
    caging_lr = [tolerance(pad_to_obj_lr[:, i], obj_radius, pad_success_thresh, caging_lr_margin[:, i], "long_tail")
                 for i in range(2)]
    caging_y = hamacher(*caging_lr)
    xz = [0, 2]
    caging_xz_margin = norm(obj_init[:, xz] - init_tcp[:, xz]) - xz_thresh
    caging_xz = tolerance(norm(c.tcp_center[:, xz] - obj_pos[:, xz]), 0.0, xz_thresh, caging_xz_margin, "long_tail")
    return hamacher(caging_y, caging_xz)


def gripper_caging(c: Copies, action: np.ndarray, obj_pos: np.ndarray, obj_radius: float,
                   pad_success_thresh: float, object_reach_radius: float, xz_thresh: float,
                   desired_gripper_effort: float = 1.0, high_density: bool = False,
                   medium_density: bool = False) -> np.ndarray:
    """``SawyerXYZEnv._gripper_caging_reward`` of every copy: :func:`object_caging`, combined with the gripper's
    effort once caged."""
    caging = object_caging(c, obj_pos, obj_radius, pad_success_thresh, xz_thresh)
    gripper_closed = gripper_effort(action, desired_gripper_effort)
    gripping = np.where(caging > CAGING_GRIP_THRESHOLD, gripper_closed, 0.0)
    caging_and_gripping = hamacher(caging, gripping)
    if high_density:
        caging_and_gripping = (caging_and_gripping + caging) / 2
    if medium_density:
        obj_init, init_tcp = c.const["obj_init"], c.const["init_tcp"]
        tcp_to_obj = norm(obj_pos - c.tcp_center)
        tcp_to_obj_init = norm(obj_init - init_tcp)
        reach_margin = np.abs(tcp_to_obj_init - object_reach_radius)
        reach = tolerance(tcp_to_obj, 0.0, object_reach_radius, reach_margin, "long_tail")
        caging_and_gripping = (caging_and_gripping + reach) / 2
    return caging_and_gripping


def quat_from_xmat(xmat: np.ndarray) -> np.ndarray:
    """scipy's ``Rotation.from_matrix(xmat.reshape(3, 3)).as_quat()`` (x, y, z, w) of each row ``[n, 9]``."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(np.asarray(xmat).reshape(-1, 3, 3)).as_quat()


# ----------------------------------------------------------------------------- the task-class seam
class NativeClass(Protocol):
    """One metaworld task class, vectorised over the copies that run it.

    ``name`` is the task name (``"drawer-close-v3"``), ``env_class`` metaworld's class (``"SawyerDrawerCloseEnvV3"``;
    the engine checks it). ``constants(inner)`` returns the per-episode numbers the reward reads beyond the ones
    every class gets (``target``, ``obj_init``, ``init_tcp``, ``hand_init``), from the metaworld env right after
    its reset; each becomes ``c.const[key]``, stacked over the copies. ``objects(c)`` returns the objects'
    positions ``[n, 3m]`` and quaternions ``[n, 4m]`` (``_get_pos_objects``, ``_get_quat_objects``);
    ``evaluate(c, obs, action)`` returns the reward ``[n]`` and the info entries of :data:`INFO_KEYS` ``[n]``
    (``evaluate_state`` on the clipped observation ``[n, 39]`` and the float32 action ``[n, 4]``)."""

    name: str
    env_class: str

    def constants(self, inner) -> Mapping[str, Any]: ...

    def objects(self, c: Copies) -> tuple[np.ndarray, np.ndarray]: ...

    def evaluate(self, c: Copies, obs: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        ...


#: task name -> its NativeClass (filled by rlmaml.envs.metaworld_classes)
NATIVE_CLASSES: dict[str, NativeClass] = {}
#: called with each class registered (the engine's module gives the families it now steps their engine)
ON_REGISTER: list[Callable[[NativeClass], None]] = []


def native_class(cls):
    """Class decorator: register an instance of a :class:`NativeClass` under its ``name``."""
    spec = cls()
    if spec.name in NATIVE_CLASSES:
        raise ValueError(f"native Meta-World class {spec.name!r} is registered twice")
    NATIVE_CLASSES[spec.name] = spec
    for hook in ON_REGISTER:
        hook(spec)
    return cls


def native_env_ids() -> tuple[str, ...]:
    """The env ids the engine steps: ML1 of every registered class, and ML10 when all its classes are."""
    ids = tuple(f"metaworld/ML1-{name}" for name in NATIVE_CLASSES)
    if all(c in NATIVE_CLASSES for split in ML10_CLASSES.values() for c in split):
        ids += ("metaworld/ML10",)
    return ids


def native_env_error(env_id) -> str | None:
    """The one-line error for an env id this engine does not step, or None."""
    if env_id in native_env_ids():
        return None
    name = env_id.removeprefix("metaworld/ML1-") if isinstance(env_id, str) else env_id
    what = f"task class {name!r} ({env_id!r})" if name != env_id else f"env {env_id!r}"
    return (f"the native Meta-World engine steps the task classes {sorted(NATIVE_CLASSES)} "
            f"({', '.join(native_env_ids())}) only, got {what}; use engine='sync' or 'processes'")


__all__ = ["CAGING_GRIP_THRESHOLD", "INFO_KEYS", "NATIVE_CLASSES", "NativeClass", "gripper_caging", "gripper_effort",
           "hamacher", "native_class", "native_env_error", "native_env_ids", "norm", "object_caging", "quat_from_xmat", "tolerance"]
